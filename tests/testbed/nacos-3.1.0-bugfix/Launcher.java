// Starts a Nacos 3.x server (no console) from the jars re-published on Maven Central.
//
// Nacos 3 splits start-up into phases that its own `nacos-bootstrap` module drives; that module is
// not re-published, and the old `com.alibaba.nacos.Nacos` main class refuses to start on 3.x
// ("Nacos don't start up."). This does the part the test bed needs: the core context, then the
// server web context (HTTP API on `nacos.server.main.port`, gRPC on +1000/+1001) as its child.
// Run by tests/testbed/testbed as a single-file source program: java -cp <classpath> Launcher.java.

import com.alibaba.nacos.NacosServerBasicApplication;
import com.alibaba.nacos.NacosServerWebApplication;
import com.alibaba.nacos.core.listener.startup.NacosStartUp;
import com.alibaba.nacos.core.listener.startup.NacosStartUpManager;
import com.alibaba.nacos.sys.env.DeploymentType;
import com.alibaba.nacos.sys.env.EnvUtil;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

public class Launcher {
    public static void main(String[] args) {
        EnvUtil.setDeploymentType(DeploymentType.SERVER);
        NacosStartUpManager.start(NacosStartUp.CORE_START_UP_PHASE);
        ConfigurableApplicationContext core = new SpringApplicationBuilder(NacosServerBasicApplication.class)
                .web(WebApplicationType.NONE)
                .run(args);
        NacosStartUpManager.start(NacosStartUp.WEB_START_UP_PHASE);
        new SpringApplicationBuilder(NacosServerWebApplication.class).parent(core).run(args);
    }
}
