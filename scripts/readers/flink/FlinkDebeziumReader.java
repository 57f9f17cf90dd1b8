import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.formats.common.TimestampFormat;
import org.apache.flink.formats.json.debezium.DebeziumJsonDeserializationSchema;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;
import org.apache.flink.table.types.utils.TypeConversions;
import org.apache.flink.util.Collector;
import org.apache.flink.util.SimpleUserCodeClassLoader;
import org.apache.flink.util.UserCodeClassLoader;

/**
 * Reads Kafka message values with Flink's debezium-json format, as a Flink SQL table declared with the row type
 * given reads them. Args: the row type (Flink SQL, e.g. {@code ROW<id BIGINT, name STRING>}) and optionally
 * {@code --schema-include} ('debezium-json.schema-include' = 'true'). Stdin: one value per line, base64; an empty
 * line is a tombstone (a null value). Stdout: per value, each row Flink makes (RowData's text: the row kind, then
 * the fields), or one line {@code ! <why>} when Flink refuses the value.
 */
public final class FlinkDebeziumReader {
    public static void main(String[] args) throws Exception {
        ClassLoader loader = FlinkDebeziumReader.class.getClassLoader();
        RowType rowType = (RowType) LogicalTypeParser.parse(args[0], loader);
        boolean schemaInclude = args.length > 1 && args[1].equals("--schema-include");
        @SuppressWarnings("unchecked")
        TypeInformation<RowData> produced = (TypeInformation<RowData>) (TypeInformation<?>) TypeInformation.of(RowData.class);
        DebeziumJsonDeserializationSchema schema = new DebeziumJsonDeserializationSchema(
                TypeConversions.fromLogicalToDataType(rowType), Collections.emptyList(), produced, schemaInclude, false,
                TimestampFormat.ISO_8601);
        schema.open(new DeserializationSchema.InitializationContext() {
            @Override
            public MetricGroup getMetricGroup() {
                throw new UnsupportedOperationException("no metrics here");
            }

            @Override
            public UserCodeClassLoader getUserCodeClassLoader() {
                return SimpleUserCodeClassLoader.create(loader);
            }
        });
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            byte[] value = line.isEmpty() ? null : Base64.getDecoder().decode(line);
            List<RowData> rows = new ArrayList<>();
            try {
                schema.deserialize(value, new Collector<RowData>() {
                    @Override
                    public void collect(RowData row) {
                        rows.add(row);
                    }

                    @Override
                    public void close() {}
                });
                rows.forEach(row -> System.out.println(row));
            } catch (Exception e) {
                Throwable cause = e;
                while (cause.getCause() != null) {
                    cause = cause.getCause();
                }
                System.out.println("! " + cause.getMessage());
            }
        }
        System.out.flush();
    }
}
