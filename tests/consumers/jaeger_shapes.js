// The shapes of the traces of a Jaeger JSON file, to compare two files
// whose ids and keys differ (an export, and the export of its import):
// each trace as a canonical tree of "service/kind" nodes, children
// sorted; prints "jaeger: T traces, S spans" and, with two files, fails
// unless their multisets of shapes are equal.
//   node jaeger_shapes.js A.json [B.json]
'use strict';
const fs = require('fs');
function fail(msg) { console.error('FAIL: ' + msg); process.exit(1); }
function shapes(file) {
	const j = JSON.parse(fs.readFileSync(file, 'utf8'));
	if (!Array.isArray(j.data)) fail(file + ': no data array');
	const out = [];
	let spans = 0;
	for (const t of j.data) {
		const kids = new Map(), byId = new Map();
		for (const s of t.spans) {
			spans++;
			if (s.traceID !== t.traceID) fail(`${file}: span ${s.spanID} in trace ${t.traceID} says ${s.traceID}`);
			if (!t.processes[s.processID]) fail(`${file}: span ${s.spanID}: process ${s.processID} not in the trace`);
			byId.set(s.spanID, s);
		}
		let roots = [];
		for (const s of t.spans) {
			const ref = (s.references || []).find(r => r.refType === 'CHILD_OF');
			if (!ref) { roots.push(s); continue; }
			if (!byId.has(ref.spanID)) fail(`${file}: span ${s.spanID}: parent ${ref.spanID} not in the trace`);
			if (!kids.has(ref.spanID)) kids.set(ref.spanID, []);
			kids.get(ref.spanID).push(s);
		}
		if (roots.length !== 1) fail(`${file}: trace ${t.traceID} has ${roots.length} roots`);
		const label = s => {
			const kind = (s.tags.find(x => x.key === 'span.kind') || {}).value;
			return t.processes[s.processID].serviceName + '/' + kind;
		};
		const canon = s => label(s) + '(' + (kids.get(s.spanID) || []).map(canon).sort().join(',') + ')';
		out.push(canon(roots[0]));
	}
	return { shapes: out.sort(), spans };
}
const a = shapes(process.argv[2]);
console.log(`jaeger: ${a.shapes.length} traces, ${a.spans} spans`);
if (process.argv[3]) {
	const b = shapes(process.argv[3]);
	if (a.spans !== b.spans) fail(`${a.spans} spans against ${b.spans}`);
	if (a.shapes.length !== b.shapes.length) fail(`${a.shapes.length} traces against ${b.shapes.length}`);
	for (let i = 0; i < a.shapes.length; i++)
		if (a.shapes[i] !== b.shapes[i]) fail(`trace shapes differ: ${a.shapes[i]} against ${b.shapes[i]}`);
	console.log('jaeger: same trace shapes');
}
