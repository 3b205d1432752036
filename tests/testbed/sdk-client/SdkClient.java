// A real application client for the tests: the official Nacos Java SDK (nacos-client, from
// Maven Central) opens its SDK connection to a node and keeps it until stdin closes, as a running
// app would. Run by `tests/testbed/testbed sdk-client HOST:PORT NAMESPACE APP`.
//
// Prints "connected <server status>" once the connection is up. Credentials come from the
// environment (NACOS_USERNAME, NACOS_PASSWORD), never from argv.

import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.naming.NamingService;
import java.util.Properties;

public class SdkClient {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: SdkClient HOST:PORT NAMESPACE   (app name: -Dproject.name)");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(PropertyKeyConst.SERVER_ADDR, args[0]);
        p.put(PropertyKeyConst.NAMESPACE, args[1]);
        String user = System.getenv("NACOS_USERNAME");
        String pass = System.getenv("NACOS_PASSWORD");
        if (user != null && !user.isEmpty()) {
            p.put(PropertyKeyConst.USERNAME, user);
            p.put(PropertyKeyConst.PASSWORD, pass == null ? "" : pass);
        }
        NamingService naming = NacosFactory.createNamingService(p);
        // The gRPC connection is set up in the background: wait until the server answers through it.
        String status = "DOWN";
        for (int i = 0; i < 100 && !"UP".equals(status); i++) {
            status = naming.getServerStatus();
            if (!"UP".equals(status)) {
                Thread.sleep(100);
            }
        }
        System.out.println("connected " + status);
        System.out.flush();
        while (System.in.read() != -1) {
            // keep the connection until the test closes our stdin (or dies)
        }
        naming.shutDown();
    }
}
