// Creates ACLs through Kafka's Admin API, as a super user on a PLAINTEXT listener, all in one request, and waits
// until the broker says they exist. Run by scripts/kafka-broker in Java's source-file mode:
//   java -cp 'LIBS/*' Acls.java BOOTSTRAP FILE
// FILE: one ACL per line, `principal resource-type name pattern-type operation` (ALLOW), e.g.
//   User:alice TOPIC * LITERAL ALL
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Acls {
    public static void main(String[] args) throws Exception {
        List<AclBinding> bindings = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            String[] f = line.trim().split("\\s+");
            if (f.length != 5) continue;
            ResourcePattern resource =
                new ResourcePattern(ResourceType.fromString(f[1]), f[2], PatternType.fromString(f[3]));
            AccessControlEntry entry =
                new AccessControlEntry(f[0], "*", AclOperation.fromString(f[4]), AclPermissionType.ALLOW);
            bindings.add(new AclBinding(resource, entry));
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
            // ACLs reach the authorizer through the metadata log: wait until they are all described.
            for (int i = 0; i < 100; i++) {
                if (admin.describeAcls(AclBindingFilter.ANY).values().get().size() >= bindings.size()) return;
                Thread.sleep(100);
            }
            throw new IllegalStateException("the ACLs were created but are not described");
        }
    }
}
