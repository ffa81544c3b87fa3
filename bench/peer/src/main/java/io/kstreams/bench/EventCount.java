package io.kstreams.bench;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * The event-count job of bench/event_count.c on Kafka Streams: decode and
 * validate each user event, key it by event type, repartition, count per
 * type in 60 s tumbling windows (grace 2 days), suppress until the window
 * closes, write each final count as JSON keyed by event type.
 *
 * <pre>
 *   EventCount --bootstrap B --topic IN --out OUT --records N --app ID
 * </pre>
 *
 * Prints {@code RESULT records=N secs=S cpu=C rss_kb=R} once N records are
 * counted (from the first record read; CPU of the whole process over that
 * interval; peak RSS), then closes every window with the same flush
 * records as the C bench and closes, so that {@code bench_event_count check}
 * can read the output.
 */
public final class EventCount {
    static final long WINDOW_MS = 60_000;
    static final long GRACE_MS = 172_800_000L; // 2 days
    static final long GEN_START_MS = 1765533600000L;
    static final long FLUSH_MS = GEN_START_MS + 10L * 86_400_000L;
    static final int PARTITIONS = 6;
    static final String[] KNOWN_TYPES = {
        "page_view", "button_click", "form_submit", "purchase",
        "add_to_cart", "search", "login", "logout"};
    static final Set<String> KNOWN = Set.of(KNOWN_TYPES);
    static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** A decoded, validated event: its JSON and the two fields used. */
    record Event(JsonNode json, String type, long timestampMs) {}

    static boolean optionalString(JsonNode n) {
        return n == null || n.isNull() || n.isTextual();
    }

    static String requiredString(JsonNode root, String field) {
        JsonNode n = root.get(field);
        return n != null && n.isTextual() && !n.asText().isEmpty()
                ? n.asText() : null;
    }

    /** The schema of user_event_decode() (apps/common/user_event.h), or
     *  null for an event that breaks it. */
    static Event decode(byte[] data) {
        if (data == null) return null;
        JsonNode root;
        try {
            root = MAPPER.readTree(data);
        } catch (IOException e) {
            return null;
        }
        if (root == null || !root.isObject()) return null;
        String type = requiredString(root, "event_type");
        if (requiredString(root, "event_id") == null
                || requiredString(root, "user_id") == null || type == null
                || !optionalString(root.get("version"))) {
            return null;
        }
        JsonNode ts = root.get("timestamp");
        long ms;
        if (ts != null && ts.isIntegralNumber()) {
            ms = ts.asLong();
        } else if (ts != null && ts.isTextual()) {
            try {
                ms = Instant.parse(ts.asText()).toEpochMilli();
            } catch (RuntimeException e) {
                return null;
            }
        } else {
            return null;
        }
        if (ms < 0) return null;
        JsonNode d = root.get("data");
        if (d != null && d.isObject()) {
            for (String f : new String[] {"session_id", "page", "currency", "device"}) {
                if (!optionalString(d.get(f))) return null;
            }
            JsonNode amount = d.get("amount");
            if (amount != null && !amount.isNull()
                    && (!amount.isNumber() || amount.asDouble() < 0)) {
                return null;
            }
        }
        return new Event(root, type, ms);
    }

    static final class EventSerde implements Serde<Event> {
        @Override
        public Serializer<Event> serializer() {
            return (topic, ev) -> {
                try {
                    return ev == null ? null : MAPPER.writeValueAsBytes(ev.json());
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            };
        }

        @Override
        public Deserializer<Event> deserializer() {
            return (topic, data) -> decode(data);
        }
    }

    /** The event's own time at the source; invalid events (filtered out
     *  next) keep the partition's time. */
    static final class EventTime implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> r, long partitionTime) {
            return r.value() instanceof Event ev ? ev.timestampMs()
                    : Math.max(partitionTime, 0);
        }
    }

    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean)
                ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static long peakRssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }

    /** The same bytes as produce_flush() in bench/event_count.c. */
    static void produceFlush(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p,
                new StringSerializer(), new StringSerializer())) {
            for (int part = 0; part < PARTITIONS; part++) {
                for (int i = 0; i < KNOWN_TYPES.length; i++) {
                    String v = "{\"event_id\":\"flush-" + part + "-" + i
                            + "\",\"user_id\":\"flush\",\"event_type\":\""
                            + KNOWN_TYPES[i] + "\",\"timestamp\":" + FLUSH_MS
                            + ",\"version\":\"1.0\",\"data\":{}}";
                    pr.send(new ProducerRecord<>(topic, part, "flush", v));
                }
            }
            pr.flush();
        }
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) a.put(argv[i], argv[i + 1]);
        String bootstrap = a.get("--bootstrap"), in = a.get("--topic"),
               out = a.get("--out"), app = a.get("--app");
        long records = Long.parseLong(a.getOrDefault("--records", "1000000"));
        if (bootstrap == null || in == null || out == null || app == null) {
            System.err.println("usage: EventCount --bootstrap B --topic IN --out OUT"
                    + " --records N --app ID");
            System.exit(2);
        }
        Path stateDir = Files.createTempDirectory("ks-bench-peer-");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 10 * 1024 * 1024L);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG,
                LogAndContinueExceptionHandler.class);
        p.put("consumer.auto.offset.reset", "earliest");

        AtomicLong firstNanos = new AtomicLong();
        AtomicLong firstCpu = new AtomicLong();
        AtomicLong counted = new AtomicLong();
        EventSerde events = new EventSerde();
        StreamsBuilder b = new StreamsBuilder();
        b.stream(in, Consumed.with(Serdes.String(), events)
                        .withTimestampExtractor(new EventTime()))
                .peek((k, v) -> {
                    if (firstNanos.get() == 0) {
                        firstCpu.set(processCpuNanos());
                        firstNanos.set(System.nanoTime());
                    }
                })
                .filter((k, v) -> v != null && KNOWN.contains(v.type()))
                .selectKey((k, v) -> v.type())
                .repartition(Repartitioned.with(Serdes.String(), events).withName("by-type"))
                .peek((k, v) -> counted.incrementAndGet())
                .groupByKey(Grouped.with(Serdes.String(), events))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(WINDOW_MS),
                        Duration.ofMillis(GRACE_MS)))
                .count(Materialized.as("event-counts"))
                .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())
                        .withName("final-counts"))
                .toStream()
                .map((wk, count) -> KeyValue.pair(wk.key(),
                        "{\"event_type\":\"" + wk.key() + "\",\"window_start\":"
                                + wk.window().start() + ",\"window_end\":"
                                + wk.window().end() + ",\"count\":" + count + "}"))
                .to(out, Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("peer: stream thread failed: " + e);
            System.exit(1);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();

        long lastLog = System.nanoTime();
        while (counted.get() < records) {
            Thread.sleep(2);
            if (System.nanoTime() - lastLog > 10_000_000_000L) {
                lastLog = System.nanoTime();
                System.err.println("peer: " + counted.get() + " of " + records + " counted");
            }
        }
        double secs = (System.nanoTime() - firstNanos.get()) / 1e9;
        double cpu = (processCpuNanos() - firstCpu.get()) / 1e9;
        System.out.printf("RESULT records=%d secs=%.3f cpu=%.3f rss_kb=%d%n",
                records, secs, cpu, peakRssKb());
        System.out.flush();

        produceFlush(bootstrap, in);
        long flushed = records + (long) PARTITIONS * KNOWN_TYPES.length;
        while (counted.get() < flushed) Thread.sleep(5);
        Thread.sleep(2000);
        streams.close(Duration.ofSeconds(60));
        try (Stream<Path> w = Files.walk(stateDir)) {
            w.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        System.exit(0);
    }
}
