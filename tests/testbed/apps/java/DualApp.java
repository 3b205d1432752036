// A real application for the L4 and dual-registration tests on the official Nacos Java SDK
// (`com.alibaba.nacos:nacos-client`, Maven Central; classpath resolved by tests/testbed/apps/setup).
// It does what the migration's dual-registration agent does: one naming client per cluster,
// the same ephemeral instance registered in the source and in the target (gRPC, Nacos 2.x), and
// optionally a config client subscribed to configs. Nothing here speaks to Nacos itself.
//
// Environment (credentials never in argv): APP_SOURCE, APP_TARGET (host:port, either may be
// empty), APP_NAMESPACE, APP_GROUP, APP_SERVICE, APP_IP, APP_PORT, APP_CONFIG_SERVER (host:port
// of the config client, optional), APP_DATA_IDS (comma-separated), NACOS_USERNAME, NACOS_PASSWORD.
//
// Prints one line per event: `registered <side>`, `stopped <side>`, `config <dataId> <md5>`
// (the md5 of the content the SDK handed it: what its CacheData holds and listens with),
// `ready`. Reads commands from stdin: `stop <side>` shuts that side's naming client down (its
// gRPC connection closes, so the server drops the ephemeral instance), `start <side>` registers
// again with a new naming client; end of stdin shuts everything down.

import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.config.ConfigService;
import com.alibaba.nacos.api.config.listener.AbstractListener;
import com.alibaba.nacos.api.naming.NamingService;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

public class DualApp {
    static String env(String k, String d) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? d : v;
    }

    static Properties props(String server) {
        Properties p = new Properties();
        p.put(PropertyKeyConst.SERVER_ADDR, server);
        p.put(PropertyKeyConst.NAMESPACE, env("APP_NAMESPACE", ""));
        String user = env("NACOS_USERNAME", "");
        if (!user.isEmpty()) {
            p.put(PropertyKeyConst.USERNAME, user);
            p.put(PropertyKeyConst.PASSWORD, env("NACOS_PASSWORD", ""));
        }
        return p;
    }

    static String md5(String s) throws Exception {
        byte[] d = MessageDigest.getInstance("MD5").digest((s == null ? "" : s).getBytes(StandardCharsets.UTF_8));
        return String.format("%032x", new BigInteger(1, d));
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static final Map<String, NamingService> naming = new HashMap<>();

    static void start(String side, String server) throws Exception {
        NamingService n = NacosFactory.createNamingService(props(server));
        n.registerInstance(env("APP_SERVICE", "app"), env("APP_GROUP", "DEFAULT_GROUP"), env("APP_IP", "127.0.0.1"),
                Integer.parseInt(env("APP_PORT", "8080")));
        naming.put(side, n);
        say("registered " + side);
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> servers = new HashMap<>();
        servers.put("source", env("APP_SOURCE", ""));
        servers.put("target", env("APP_TARGET", ""));
        if (!env("APP_SERVICE", "").isEmpty()) {
            for (String side : new String[] {"source", "target"}) {
                if (!servers.get(side).isEmpty()) {
                    start(side, servers.get(side));
                }
            }
        }
        ConfigService config = null;
        String configServer = env("APP_CONFIG_SERVER", "");
        if (!configServer.isEmpty()) {
            config = NacosFactory.createConfigService(props(configServer));
            String group = env("APP_GROUP", "DEFAULT_GROUP");
            for (String dataId : env("APP_DATA_IDS", "").split(",")) {
                if (dataId.isEmpty()) {
                    continue;
                }
                String content = config.getConfigAndSignListener(dataId, group, 5000, new AbstractListener() {
                    @Override
                    public void receiveConfigInfo(String c) {
                        try {
                            say("config " + dataId + " " + md5(c));
                        } catch (Exception e) {
                            say("error " + e);
                        }
                    }
                });
                say("config " + dataId + " " + md5(content));
            }
        }
        say("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split("\\s+");
            if (w.length != 2 || !servers.containsKey(w[1]) || servers.get(w[1]).isEmpty()) {
                say("error unknown command");
                continue;
            }
            if (w[0].equals("stop") && naming.containsKey(w[1])) {
                naming.remove(w[1]).shutDown();
                say("stopped " + w[1]);
            } else if (w[0].equals("start") && !naming.containsKey(w[1])) {
                start(w[1], servers.get(w[1]));
            } else {
                say("error nothing to do");
            }
        }
        for (NamingService n : naming.values()) {
            n.shutDown();
        }
        if (config != null) {
            config.shutDown();
        }
        System.exit(0);
    }
}
