// Decode a `tracejoin export --format otlp` file (JSON Lines: one
// ExportTraceServiceRequest per line, each at most 1 MiB, whole traces
// on a line, as the Collector's otlpjsonfile receiver reads) with the official
// OpenTelemetry protobuf definitions (the protobufjs code that
// @opentelemetry/otlp-transformer generates from opentelemetry-proto):
// every field we wrote must be a field of ExportTraceServiceRequest with
// the right type, the message must encode and decode, and the spans must
// make well-formed traces.  Prints "otlp: S spans, P with a parent, T
// traces, W marked wrong" and checks them against the expected counts.
//   node check_otlp.js CONSUMERS_DIR FILE SPANS PARENTED TRACES
'use strict';
const fs = require('fs');
const path = require('path');
const [dir, file, wantSpans, wantParented, wantTraces] = process.argv.slice(2);
const root = require(path.resolve(dir, 'node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js'));
const Req = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

function fail(msg) { console.error('FAIL: ' + file + ': ' + msg); process.exit(1); }

const HEX = { traceId: 32, spanId: 16, parentSpanId: 16 };
function decodeLine(text, lineNo) {
const json = JSON.parse(text);
// protobuf JSON carries ids as hex; the binary form wants bytes.
const bin = JSON.parse(JSON.stringify(json), (k, v) => {
	if (!(k in HEX)) return v;
	if (typeof v !== 'string' || v.length !== HEX[k] || !/^[0-9a-f]+$/.test(v)) fail(`${k} ${v}: not ${HEX[k]} hex digits`);
	if (/^0+$/.test(v)) fail(`${k}: an all-zero id is invalid`);
	return Buffer.from(v, 'hex');
});
const msg = Req.fromObject(bin);
const err = Req.verify(msg);
if (err) fail('verify: ' + err);
const decoded = Req.decode(Req.encode(msg).finish());
// The generated code drops what is not in the proto: every field we
// wrote must come back, with the same value, from the binary round trip.
const back = Req.toObject(decoded, { longs: String, enums: Number, bytes: String, defaults: true, arrays: true });
function same(ours, theirs, at) {
	if (Array.isArray(ours)) {
		if (!Array.isArray(theirs) || theirs.length !== ours.length) fail(`${at}: array lost in the round trip`);
		ours.forEach((x, i) => same(x, theirs[i], `${at}[${i}]`));
	} else if (ours !== null && typeof ours === 'object') {
		for (const k of Object.keys(ours)) {
			if (theirs === null || typeof theirs !== 'object' || !(k in theirs)) fail(`${at}.${k}: not a field of the OTLP proto`);
			if (k in HEX) {
				if (Buffer.from(theirs[k], 'base64').toString('hex') !== ours[k]) fail(`${at}.${k}: changed in the round trip`);
			} else same(ours[k], theirs[k], `${at}.${k}`);
		}
	} else if (String(ours) !== String(theirs)) {
		fail(`${at}: ${JSON.stringify(ours)} came back as ${JSON.stringify(theirs)} (wrong type?)`);
	}
	if (/UnixNano$/.test(at) && !(typeof ours === 'string' && /^[0-9]+$/.test(ours))) fail(`${at}: int64 as a decimal string expected`);
}
same(json, back, `line ${lineNo}`);
return decoded;
}


const text = fs.readFileSync(file, 'utf8');
if (!text.endsWith('\n')) fail('the last line does not end');
const lines = text.slice(0, -1).split('\n');
let spans = 0, parented = 0, wrong = 0;
const traces = new Map(); // traceId -> Map spanId -> parent
const lineOf = new Map(); // traceId -> the line that has it
lines.forEach((line, i) => {
	if (Buffer.byteLength(line) > 1 << 20) fail(`line ${i + 1}: longer than 1 MiB`);
	const decoded = decodeLine(line, i + 1);
	for (const rs of decoded.resourceSpans) {
	const svc = rs.resource.attributes.find(a => a.key === 'service.name');
	if (!svc || !svc.value.stringValue) fail('a resource without service.name');
	for (const ss of rs.scopeSpans) for (const s of ss.spans) {
		spans++;
		const t = Buffer.from(s.traceId).toString('hex'), id = Buffer.from(s.spanId).toString('hex');
		if (!traces.has(t)) traces.set(t, new Map());
		if (traces.get(t).has(id)) fail(`span ${id} twice in trace ${t}`);
		const p = s.parentSpanId && s.parentSpanId.length ? Buffer.from(s.parentSpanId).toString('hex') : null;
		traces.get(t).set(id, p);
		if (p) parented++;
		if (s.kind !== 2 && s.kind !== 3) fail(`span ${id}: kind ${s.kind}, SERVER or CLIENT expected`);
		if (BigInt(s.endTimeUnixNano.toString()) < BigInt(s.startTimeUnixNano.toString())) fail(`span ${id} ends before it starts`);
		const c = s.attributes.find(a => a.key === 'tracejoin.correct');
		if (c && c.value.boolValue === false) wrong++;
		for (const k of ['tracejoin.key', 'tracejoin.bytes'])
			if (!s.attributes.find(a => a.key === k)) fail(`span ${id}: no ${k}`);
		if (lineOf.has(t) && lineOf.get(t) !== i) fail(`trace ${t} split over lines ${lineOf.get(t) + 1} and ${i + 1}`);
		lineOf.set(t, i);
	}
	}
});
for (const [t, m] of traces) {
	let roots = 0;
	for (const [id, p] of m) {
		if (!p) { roots++; continue; }
		if (!m.has(p)) fail(`trace ${t}: span ${id}'s parent ${p} is not in the trace`);
	}
	if (roots !== 1) fail(`trace ${t}: ${roots} roots`);
}
console.log(`otlp: ${spans} spans, ${parented} with a parent, ${traces.size} traces, ${wrong} marked wrong, ${lines.length} requests`);
if (wantSpans !== undefined && spans !== +wantSpans) fail(`${spans} spans, want ${wantSpans}`);
if (wantParented !== undefined && parented !== +wantParented) fail(`${parented} spans with a parent, want ${wantParented}`);
if (wantTraces !== undefined && traces.size !== +wantTraces) fail(`${traces.size} traces, want ${wantTraces}`);
