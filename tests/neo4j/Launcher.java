import java.io.InputStream;
import java.net.URI;
import java.time.Duration;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;
import org.neo4j.io.ByteUnit;

/**
 * Starts an in-process Neo4j community server for the test suite.
 *
 * Bolt listens on a free 127.0.0.1 port, auth and HTTP are disabled. Prints
 * exactly one line "BOLT bolt://127.0.0.1:PORT" on stdout once ready, then runs
 * until stdin reaches EOF or the JVM gets SIGTERM. Neo4j logs go to files in a
 * random server folder under java.io.tmpdir (deleted on close; the harness also
 * leaves a log4j-*.xml there), so run with -Djava.io.tmpdir=<scratch dir>.
 */
public final class Launcher {
    private static Neo4j server;

    private static synchronized void shutdown() {
        if (server != null) {
            try {
                server.close();
            } catch (RuntimeException e) {
                System.err.println("neo4j shutdown failed: " + e);
            }
            server = null;
        }
    }

    public static void main(String[] args) throws Exception {
        Neo4j neo4j = Neo4jBuilders.newInProcessBuilder()
                .withDisabledServer()
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", 0))
                .withConfig(GraphDatabaseSettings.auth_enabled, false)
                .withConfig(GraphDatabaseSettings.pagecache_memory,
                        ByteUnit.mebiBytes(Long.getLong("circuitdb.pagecache.mb", 64)))
                // as docker-compose.yml: LOAD CSV may not read the server's files
                .withConfig(GraphDatabaseSettings.allow_file_urls, false)
                // Bolt's netty shutdown otherwise waits a multi-second quiet period.
                .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(2))
                .build();
        synchronized (Launcher.class) {
            server = neo4j;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(Launcher::shutdown, "neo4j-shutdown"));

        URI bolt = neo4j.boltURI();
        System.out.println("BOLT bolt://127.0.0.1:" + bolt.getPort());
        System.out.flush();

        InputStream in = System.in;
        byte[] buf = new byte[256];
        while (in.read(buf) >= 0) {
            // ignore input; only EOF matters
        }
        shutdown();
        System.exit(0);
    }
}
