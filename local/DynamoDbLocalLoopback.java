import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local bound to 127.0.0.1 only. DynamoDB Local has no bind-address
 * option and listens on every interface; this sets the host on its Jetty connectors
 * before it starts. Arguments are DynamoDB Local's own (-port, -inMemory, -dbPath, ...).
 *
 * It also exits when the process that started it is gone, however that died (kill -9
 * included): its stdin is a pipe from that process, which reaches end of file then, and
 * as a second watch, its parent changes. A stray JVM would otherwise keep the data
 * dir and its port with nobody to stop it.
 */
public class DynamoDbLocalLoopback {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    for (Connector connector : server.getConnectors()) {
      ((ServerConnector) connector).setHost("127.0.0.1");
    }
    watchParent();
    proxy.start();
    System.out.println("DynamoDB Local listening on 127.0.0.1");
    proxy.join();
  }

  private static void watchParent() {
    final long parent = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(-1L);
    Thread stdin = new Thread(() -> {
      try {
        byte[] buffer = new byte[256];
        while (System.in.read(buffer) >= 0) {
          // Nothing is sent on this pipe; only its end matters.
        }
      } catch (java.io.IOException ignored) {
        // A broken pipe is an end too.
      }
      parentGone("its stdin closed");
    }, "parent-stdin-watch");
    stdin.setDaemon(true);
    stdin.start();
    Thread poll = new Thread(() -> {
      while (true) {
        long now = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(-1L);
        boolean alive = ProcessHandle.of(parent).map(ProcessHandle::isAlive).orElse(false);
        if (now != parent || !alive) parentGone("its parent process " + parent + " exited");
        try {
          Thread.sleep(1000);
        } catch (InterruptedException e) {
          return;
        }
      }
    }, "parent-poll-watch");
    poll.setDaemon(true);
    poll.start();
  }

  private static void parentGone(String why) {
    System.err.println("DynamoDB Local stops: " + why);
    System.exit(0);
  }
}
