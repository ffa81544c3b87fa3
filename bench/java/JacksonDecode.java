/*
 * The Jackson baseline of bench/json-decode.sh: decodes the same user events
 * as bench_json_decode (one per line of a file) into an equivalent Java
 * object, the way a Kafka Streams deserializer would, with
 *   (a) ObjectMapper.readTree (the common DOM style), and
 *   (b) the streaming JsonParser (the fastest Jackson style).
 * Each does what the C decoders do: parse and validate the whole record
 * (trailing tokens are an error), check the schema, copy out the fields and
 * convert the ISO-8601 timestamp to epoch milliseconds. The timestamp is
 * converted by a small hand-written parser for the canonical form (falling
 * back to java.time), so that Jackson is not slowed down by java.time.
 *
 *   java -cp <jackson jars>:<classes> JacksonDecode FILE [PASSES]
 *
 * Prints a table and one "RESULT<TAB>name<TAB>events/s<TAB>MB/s<TAB>
 * ns/event<TAB>checksum<TAB>best events/s" line per decoder, as
 * bench_json_decode does.
 */

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public final class JacksonDecode {
    /** The decoded event: the Java twin of user_event_t. */
    static final class UserEvent {
        String eventId, userId, eventType, sessionId, page, currency, device, version;
        long timestampMs;
        double amount;
        boolean hasAmount;
    }

    static final class BadRecord extends Exception {
        private static final long serialVersionUID = 1L;

        BadRecord(String msg) {
            super(msg, null, false, false);
        }
    }

    interface Decoder {
        UserEvent decode(byte[] record) throws IOException, BadRecord;
    }

    static final ObjectMapper MAPPER =
            new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    static final JsonFactory FACTORY = MAPPER.getFactory();

    // Days since 1970-01-01 of a proleptic Gregorian date (days_from_civil).
    static long daysFromCivil(long y, int m, int d) {
        y -= m <= 2 ? 1 : 0;
        long era = (y >= 0 ? y : y - 399) / 400;
        long yoe = y - era * 400;
        long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
    }

    static int digits(String s, int at, int n) {
        int v = 0;
        for (int i = at; i < at + n; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') return -1;
            v = v * 10 + (c - '0');
        }
        return v;
    }

    static long parseTimestamp(String s) throws BadRecord {
        if (s.length() == 24 && s.charAt(4) == '-' && s.charAt(7) == '-'
                && s.charAt(10) == 'T' && s.charAt(13) == ':' && s.charAt(16) == ':'
                && s.charAt(19) == '.' && s.charAt(23) == 'Z') {
            int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
            int h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
            int ms = digits(s, 20, 3);
            if (y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23
                    && mi >= 0 && mi <= 59 && sec >= 0 && sec <= 60 && ms >= 0) {
                return ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60_000L
                        + sec * 1000L + ms;
            }
        }
        try {
            return OffsetDateTime.parse(s).toInstant().toEpochMilli();
        } catch (RuntimeException e) {
            throw new BadRecord("user_event: field timestamp is not an ISO-8601 date-time");
        }
    }

    static String required(String v, String name) throws BadRecord {
        if (v == null || v.isEmpty())
            throw new BadRecord("user_event: field " + name + " must be a non-empty string");
        return v;
    }

    static String textOrNull(JsonNode n, String name) throws BadRecord {
        if (n == null || n.isNull()) return null;
        if (!n.isTextual()) throw new BadRecord("user_event: field " + name + " must be a string");
        return n.textValue();
    }

    /** (a) readTree: the whole record as a JsonNode tree, then the fields. */
    static UserEvent decodeTree(byte[] record) throws IOException, BadRecord {
        JsonNode root = MAPPER.readTree(record);
        if (root == null || !root.isObject()) throw new BadRecord("not an object");
        UserEvent ev = new UserEvent();
        ev.eventId = required(textOrNull(root.get("event_id"), "event_id"), "event_id");
        ev.userId = required(textOrNull(root.get("user_id"), "user_id"), "user_id");
        ev.eventType = required(textOrNull(root.get("event_type"), "event_type"), "event_type");
        ev.version = textOrNull(root.get("version"), "version");
        JsonNode ts = root.get("timestamp");
        if (ts != null && ts.isTextual()) ev.timestampMs = parseTimestamp(ts.textValue());
        else if (ts != null && ts.isIntegralNumber() && ts.canConvertToLong()) ev.timestampMs = ts.longValue();
        else throw new BadRecord("user_event: bad timestamp");
        if (ev.timestampMs < 0) throw new BadRecord("user_event: field timestamp is before 1970");
        JsonNode data = root.get("data");
        if (data != null && data.isObject()) {
            ev.sessionId = textOrNull(data.get("session_id"), "data.session_id");
            ev.page = textOrNull(data.get("page"), "data.page");
            ev.currency = textOrNull(data.get("currency"), "data.currency");
            ev.device = textOrNull(data.get("device"), "data.device");
            JsonNode amount = data.get("amount");
            if (amount != null && !amount.isNull()) {
                if (!amount.isNumber()) throw new BadRecord("user_event: bad amount");
                ev.amount = amount.doubleValue();
                ev.hasAmount = true;
                if (ev.amount < 0) throw new BadRecord("user_event: field data.amount must be >= 0");
            }
        }
        return ev;
    }

    static String streamText(JsonParser p, String name) throws IOException, BadRecord {
        JsonToken t = p.nextToken();
        if (t == JsonToken.VALUE_NULL) return null;
        if (t != JsonToken.VALUE_STRING) throw new BadRecord("user_event: field " + name + " must be a string");
        return p.getText();
    }

    static void streamData(JsonParser p, UserEvent ev) throws IOException, BadRecord {
        if (p.nextToken() != JsonToken.START_OBJECT) {
            p.skipChildren();
            return;
        }
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String name = p.getCurrentName();
            switch (name) {
                case "session_id": ev.sessionId = streamText(p, name); break;
                case "page": ev.page = streamText(p, name); break;
                case "currency": ev.currency = streamText(p, name); break;
                case "device": ev.device = streamText(p, name); break;
                case "amount": {
                    JsonToken t = p.nextToken();
                    if (t == JsonToken.VALUE_NULL) break;
                    if (t != JsonToken.VALUE_NUMBER_FLOAT && t != JsonToken.VALUE_NUMBER_INT)
                        throw new BadRecord("user_event: bad amount");
                    ev.amount = p.getDoubleValue();
                    ev.hasAmount = true;
                    if (ev.amount < 0) throw new BadRecord("user_event: field data.amount must be >= 0");
                    break;
                }
                default: p.nextToken(); p.skipChildren();
            }
        }
    }

    /** (b) streaming: tokens straight into the object. */
    static UserEvent decodeStreaming(byte[] record) throws IOException, BadRecord {
        try (JsonParser p = FACTORY.createParser(record)) {
            if (p.nextToken() != JsonToken.START_OBJECT) throw new BadRecord("not an object");
            UserEvent ev = new UserEvent();
            boolean hasTs = false;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.getCurrentName();
                switch (name) {
                    case "event_id": ev.eventId = streamText(p, name); break;
                    case "user_id": ev.userId = streamText(p, name); break;
                    case "event_type": ev.eventType = streamText(p, name); break;
                    case "version": ev.version = streamText(p, name); break;
                    case "timestamp": {
                        JsonToken t = p.nextToken();
                        if (t == JsonToken.VALUE_STRING) ev.timestampMs = parseTimestamp(p.getText());
                        else if (t == JsonToken.VALUE_NUMBER_INT) ev.timestampMs = p.getLongValue();
                        else throw new BadRecord("user_event: bad timestamp");
                        hasTs = true;
                        break;
                    }
                    case "data": streamData(p, ev); break;
                    default: p.nextToken(); p.skipChildren();
                }
            }
            if (p.nextToken() != null) throw new BadRecord("trailing content");
            required(ev.eventId, "event_id");
            required(ev.userId, "user_id");
            required(ev.eventType, "event_type");
            if (!hasTs || ev.timestampMs < 0) throw new BadRecord("user_event: bad timestamp");
            return ev;
        }
    }

    // The same fold as bench_json_decode's, so that the sums can be compared.
    static long fold(UserEvent ev) {
        long h = ev.timestampMs;
        String[] s = {ev.eventId, ev.userId, ev.eventType, ev.sessionId, ev.page, ev.currency,
                ev.device, ev.version};
        for (String x : s) h = h * 31 + (x == null ? 0 : x.isEmpty() ? 1 : x.charAt(0) + 1);
        if (ev.hasAmount) h += (long) (ev.amount * 100 + 0.5);
        return h;
    }

    static long pass(Decoder d, byte[][] records, long[] failed) throws IOException {
        long sum = 0;
        for (byte[] r : records) {
            try {
                sum += fold(d.decode(r));
            } catch (BadRecord e) {
                failed[0]++;
            }
        }
        return sum;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: JacksonDecode FILE [PASSES]");
            System.exit(2);
        }
        int passes = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        List<byte[]> list = new ArrayList<>();
        long bytes = 0;
        byte[] all = Files.readAllBytes(Paths.get(args[0]));
        for (int start = 0, i = 0; i < all.length; i++) {
            if (all[i] != '\n') continue;
            if (i > start) {
                list.add(Arrays.copyOfRange(all, start, i));
                bytes += i - start;
            }
            start = i + 1;
        }
        all = null;
        byte[][] records = list.toArray(new byte[0][]);
        list = null;
        int n = records.length;
        System.out.printf("jackson_decode: %d events, %.1f bytes/event on average, "
                + "Jackson %s, Java %s, %d passes each after 3 warm-up passes, median reported%n",
                n, (double) bytes / n, com.fasterxml.jackson.databind.cfg.PackageVersion.VERSION,
                System.getProperty("java.version"), passes);

        String[] names = {"Jackson readTree", "Jackson streaming"};
        Decoder[] decoders = {JacksonDecode::decodeTree, JacksonDecode::decodeStreaming};
        double[] median = new double[2], best = new double[2];
        long[] sums = new long[2], fails = new long[2];
        for (int k = 0; k < 2; k++) {
            long[] failed = {0};
            // Warm-up: let the JIT compile the decode path before measuring.
            for (int w = 0; w < 3; w++) {
                failed[0] = 0;
                sums[k] = pass(decoders[k], records, failed);
            }
            fails[k] = failed[0];
            double[] t = new double[passes];
            for (int p = 0; p < passes; p++) {
                failed[0] = 0;
                long t0 = System.nanoTime();
                long sum = pass(decoders[k], records, failed);
                t[p] = (System.nanoTime() - t0) / 1e9;
                if (sum != sums[k] || failed[0] != fails[k]) throw new IllegalStateException("passes disagree");
            }
            Arrays.sort(t);
            median[k] = t[passes / 2];
            best[k] = t[0];
        }

        System.out.printf("%n%-34s %12s %10s %10s %12s%n", "decoder", "events/s", "MB/s", "ns/event", "best ev/s");
        for (int k = 0; k < 2; k++)
            System.out.printf("%-34s %12.0f %10.1f %10.1f %12.0f%n", names[k], n / median[k],
                    bytes / median[k] / 1e6, median[k] / n * 1e9, n / best[k]);
        for (int k = 0; k < 2; k++)
            if (fails[k] > 0) System.out.printf("%s: %d records rejected%n", names[k], fails[k]);
        System.out.println();
        for (int k = 0; k < 2; k++)
            System.out.printf("RESULT\t%s\t%.0f\t%.1f\t%.1f\t%s\t%.0f%n", names[k], n / median[k],
                    bytes / median[k] / 1e6, median[k] / n * 1e9, Long.toUnsignedString(sums[k]),
                    n / best[k]);
    }
}
