// The official `openai` npm client against `xent serve`: a response_format json_schema reply
// and a tool_choice "required" reply, each plain and streamed, checked by a small JSON Schema
// validator of this file's own (the subset the schemas below use).
//
// Usage: node openai.client.mjs --xent PATH --model PATH
// Exit status: 0 passed, 1 failed, 77 skipped (the `openai` package is not installed:
// scripts/setup-client-tests.sh installs it; running needs no network).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

const SKIP = 77;
const TOTAL_MS = 50_000;
const t_start = Date.now();

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined;
}
const xent = arg("--xent");
const model = arg("--model");
function log(msg) {
  console.log(`[${((Date.now() - t_start) / 1000).toFixed(1)}s] ${msg}`);
}
if (!xent || !model || !existsSync(xent) || !existsSync(model)) {
  console.error(`FAIL: usage: node openai.client.mjs --xent PATH --model PATH (got ${xent}, ${model})`);
  process.exit(1);
}
let OpenAI;
try {
  ({ default: OpenAI } = await import("openai"));
} catch (e) {
  console.log(`SKIP: the npm package openai is not installed (${e.code || e.message}); ` +
              `scripts/setup-client-tests.sh installs it`);
  process.exit(SKIP);
}

// ---- a validator for the schema subset used here --------------------------------------------
function validate(schema, value, path = "$") {
  const errors = [];
  const type = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v);
  if (schema.enum && !schema.enum.some((x) => JSON.stringify(x) === JSON.stringify(value)))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (schema.type) {
    const t = type(value);
    const ok = schema.type === t || (schema.type === "number" && t === "integer");
    if (!ok) return [`${path}: ${t} where ${schema.type} is expected`];
  }
  if (schema.type === "string" && schema.maxLength !== undefined && [...value].length > schema.maxLength)
    errors.push(`${path}: longer than ${schema.maxLength}`);
  if (schema.type === "object") {
    for (const k of schema.required || []) if (!(k in value)) errors.push(`${path}: '${k}' is missing`);
    for (const [k, v] of Object.entries(value)) {
      if (schema.properties && k in schema.properties) errors.push(...validate(schema.properties[k], v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: '${k}' is not allowed`);
    }
  }
  if (schema.type === "array") {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${path}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, i) => errors.push(...validate(schema.items, v, `${path}[${i}]`)));
  }
  return errors;
}
// The validator must be able to fail.
const self_check = { type: "object", properties: { a: { enum: ["x"] } }, required: ["a"], additionalProperties: false };
if (validate(self_check, { a: "x" }).length !== 0 || validate(self_check, { a: "y", b: 1 }).length !== 2) {
  console.error("FAIL: the validator itself is wrong");
  process.exit(1);
}

const dose_schema = {
  type: "object",
  properties: {
    drug: { type: "string", maxLength: 12 },
    dose_mg: { type: "integer" },
    route: { enum: ["oral", "iv", "topical"] },
    prn: { type: "boolean" },
    sites: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 2 },
  },
  required: ["drug", "dose_mg", "route"],
  additionalProperties: false,
};
const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: {
    type: "object", properties: { city: { type: "string", maxLength: 12 }, unit: { enum: ["c", "f"] } },
    required: ["city", "unit"], additionalProperties: false } } },
  { type: "function", function: { name: "lookup_drug", description: "A drug's monograph", parameters: {
    type: "object", properties: { name: { type: "string", maxLength: 10 }, strength_mg: { type: "integer" } },
    required: ["name"], additionalProperties: false } } },
];

// ---- the server: always stopped, on success, failure or timeout --------------------------------
let server = null;
let failures = 0;
function fail(msg) {
  console.error(`FAIL: ${msg}`);
  failures++;
}
function stop(code) {
  if (server && server.exitCode === null) server.kill("SIGTERM");
  process.exit(code);
}
setTimeout(() => { console.error(`FAIL: timed out after ${TOTAL_MS} ms`); stop(1); }, TOTAL_MS).unref();

server = spawn(xent, ["serve", "-m", model, "--port", "0", "-t", "2", "--max-tokens", "256"], {
  stdio: ["ignore", "ignore", "pipe"],
});
const port = await new Promise((resolve) => {
  let text = "";
  server.stderr.on("data", (d) => {
    text += d;
    const m = text.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on("exit", () => resolve(0));
});
if (!port) {
  console.error("FAIL: the server did not start");
  stop(1);
}
log(`xent serve on port ${port}`);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });

function check_json(label, text, schema) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return fail(`${label}: not JSON (${e.message}): ${JSON.stringify(text)}`);
  }
  const errors = validate(schema, value);
  if (errors.length) fail(`${label}: ${errors.join("; ")}: ${text}`);
  else log(`${label}: ${text}`);
}

try {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  if (ids.length !== 1) throw new Error(`models: ${JSON.stringify(ids)}`);
  const model = ids[0];
  const messages = [{ role: "user", content: "The dose as JSON, please." }];
  const response_format = { type: "json_schema", json_schema: { name: "dose", strict: true, schema: dose_schema } };

  // response_format json_schema, plain and streamed.
  for (const seed of [1, 2]) {
    const r = await client.chat.completions.create({ model, messages, response_format, seed, temperature: 1 });
    if (r.choices[0].finish_reason !== "stop") fail(`json_schema: finish_reason ${r.choices[0].finish_reason}`);
    check_json(`json_schema (seed ${seed})`, r.choices[0].message.content, dose_schema);
  }
  for (const seed of [3, 4]) {
    const stream = await client.chat.completions.create({ model, messages, response_format, seed, temperature: 1,
                                                          stream: true });
    let text = "", finish = null, chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta?.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (finish !== "stop") fail(`json_schema stream: finish_reason ${finish}`);
    check_json(`json_schema stream (seed ${seed}, ${chunks} chunks)`, text, dose_schema);
  }

  // tool_choice required, plain and streamed: a call of a listed tool with valid arguments.
  const tool_messages = [{ role: "user", content: "What is the weather in Oslo?" }];
  const schema_of = (name) => tools.find((t) => t.function.name === name)?.function.parameters;
  function check_call(label, call) {
    if (!call || call.type !== "function" || typeof call.id !== "string" || !call.id)
      return fail(`${label}: not a function call: ${JSON.stringify(call)}`);
    const schema = schema_of(call.function.name);
    if (!schema) return fail(`${label}: unknown tool ${call.function.name}`);
    check_json(`${label}: ${call.function.name}`, call.function.arguments, schema);
  }
  for (const seed of [5, 6]) {
    const r = await client.chat.completions.create({ model, messages: tool_messages, tools, tool_choice: "required",
                                                     parallel_tool_calls: false, seed, temperature: 1 });
    const c = r.choices[0];
    if (c.finish_reason !== "tool_calls") fail(`tools: finish_reason ${c.finish_reason}`);
    if (c.message.content !== null) fail(`tools: content ${JSON.stringify(c.message.content)}`);
    if (c.message.tool_calls?.length !== 1) fail(`tools: ${c.message.tool_calls?.length} calls`);
    check_call(`tools (seed ${seed})`, c.message.tool_calls?.[0]);
  }
  for (const seed of [7, 8]) {
    const stream = await client.chat.completions.create({ model, messages: tool_messages, tools,
                                                          tool_choice: { type: "function", function: { name: "lookup_drug" } },
                                                          seed, temperature: 1, stream: true });
    // Deltas put together by index, as clients do.
    const calls = [];
    let finish = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      for (const d of c.delta?.tool_calls ?? []) {
        const call = (calls[d.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } });
        if (d.id) call.id = d.id;
        if (d.function?.name) call.function.name += d.function.name;
        if (d.function?.arguments) call.function.arguments += d.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (finish !== "tool_calls") fail(`tools stream: finish_reason ${finish}`);
    if (calls.length < 1) fail("tools stream: no call");
    if (calls[0]?.function.name !== "lookup_drug") fail(`tools stream: called ${calls[0]?.function.name}`);
    check_call(`tools stream (seed ${seed})`, calls[0]);
  }

  // The client sees a bad schema as its BadRequestError, with the server's message.
  try {
    await client.chat.completions.create({ model, messages, response_format: { type: "json_schema",
      json_schema: { name: "x", schema: { type: "string", pattern: "^a" } } } });
    fail("a schema with 'pattern' was accepted");
  } catch (e) {
    if (!(e instanceof OpenAI.BadRequestError) || !/pattern/.test(e.message)) fail(`bad schema: ${e}`);
    else log(`bad schema: ${e.status} ${e.message}`);
  }
} catch (e) {
  fail(`${e.stack || e}`);
}
log(failures ? `${failures} failure(s)` : "passed");
stop(failures ? 1 : 0);
