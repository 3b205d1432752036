// Starts a Nacos 2.3.2 node (com.alibaba.nacos.Nacos) with more Tomcat connectors that serve the
// same application over HTTPS: `testbed.https.connectors` is `port=keystore,port=keystore,...`
// (PKCS12 keystores, password `testbed.https.password`). The bed gives it its good certificate
// and two that clients must refuse (an expired one, one issued for another name).
//
// Why more connectors rather than `server.ssl.*` on the main port: cluster members reach each
// other at `ip:port` over plain HTTP (ServerMemberManager.MemberInfoReportTask posts to
// HttpUtils.buildUrl(false, address, ...), an `http://` URL), so a member serving only HTTPS on
// its main port would be reported unreachable by the others. The plain port stays for the
// cluster; clients (nacos-drift) use the HTTPS ones.
// Run by tests/testbed/testbed as a single-file source program: java -cp <classpath> HttpsLauncher.java.

import com.alibaba.nacos.Nacos;
import org.apache.catalina.connector.Connector;
import org.apache.tomcat.util.net.SSLHostConfig;
import org.apache.tomcat.util.net.SSLHostConfigCertificate;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;

public class HttpsLauncher {
    public static void main(String[] args) {
        new SpringApplicationBuilder(Nacos.class, HttpsConnectors.class).run(args);
    }

    /** Adds one HTTPS connector per `port=keystore` of `testbed.https.connectors`. */
    public static class HttpsConnectors implements WebServerFactoryCustomizer<TomcatServletWebServerFactory> {
        @Override
        public void customize(TomcatServletWebServerFactory factory) {
            String password = System.getProperty("testbed.https.password");
            for (String entry : System.getProperty("testbed.https.connectors", "").split(",")) {
                if (entry.isBlank()) {
                    continue;
                }
                String[] pk = entry.split("=", 2);
                factory.addAdditionalTomcatConnectors(connector(Integer.parseInt(pk[0].trim()), pk[1].trim(), password));
            }
        }

        private static Connector connector(int port, String keystore, String password) {
            Connector c = new Connector(TomcatServletWebServerFactory.DEFAULT_PROTOCOL);
            c.setPort(port);
            c.setProperty("address", "127.0.0.1");
            c.setScheme("https");
            c.setSecure(true);
            c.setProperty("SSLEnabled", "true");
            SSLHostConfig host = new SSLHostConfig();
            SSLHostConfigCertificate cert =
                    new SSLHostConfigCertificate(host, SSLHostConfigCertificate.Type.UNDEFINED);
            cert.setCertificateKeystoreFile(keystore);
            cert.setCertificateKeystorePassword(password);
            cert.setCertificateKeystoreType("PKCS12");
            host.addCertificate(cert);
            c.addSslHostConfig(host);
            return c;
        }
    }
}
