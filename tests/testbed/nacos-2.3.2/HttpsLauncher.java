// Starts a Nacos 2.3.2 node (com.alibaba.nacos.Nacos) with one more Tomcat connector that serves
// the same application over HTTPS, on the port `testbed.https.port`, with the PKCS12 keystore
// `testbed.https.keystore` (password `testbed.https.password`).
//
// Why a second connector rather than `server.ssl.*` on the main port: cluster members reach each
// other at `ip:port` over plain HTTP (ServerMemberManager.MemberInfoReportTask posts to
// HttpUtils.buildUrl(false, address, ...), an `http://` URL), so a member serving only HTTPS on
// its main port would be reported unreachable by the others. The plain port stays for the cluster; clients (nacos-drift) use the HTTPS one.
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
        new SpringApplicationBuilder(Nacos.class, HttpsConnector.class).run(args);
    }

    /** Adds the HTTPS connector to the embedded Tomcat. */
    public static class HttpsConnector implements WebServerFactoryCustomizer<TomcatServletWebServerFactory> {
        @Override
        public void customize(TomcatServletWebServerFactory factory) {
            Connector c = new Connector(TomcatServletWebServerFactory.DEFAULT_PROTOCOL);
            c.setPort(Integer.getInteger("testbed.https.port"));
            c.setProperty("address", "127.0.0.1");
            c.setScheme("https");
            c.setSecure(true);
            c.setProperty("SSLEnabled", "true");
            SSLHostConfig host = new SSLHostConfig();
            SSLHostConfigCertificate cert =
                    new SSLHostConfigCertificate(host, SSLHostConfigCertificate.Type.UNDEFINED);
            cert.setCertificateKeystoreFile(System.getProperty("testbed.https.keystore"));
            cert.setCertificateKeystorePassword(System.getProperty("testbed.https.password"));
            cert.setCertificateKeystoreType("PKCS12");
            host.addCertificate(cert);
            c.addSslHostConfig(host);
            factory.addAdditionalTomcatConnectors(c);
        }
    }
}
