// The `markdown` tool component: Markdown to text, outlines, links and
// statistics, in JavaScript. Built with componentize-js against
// `wit/tool.wit` (world `tool`).

import { log } from 'toolhost:tool/host@0.1.0';
import { links, outline, stats, toText } from './markdown.js';

const PURE = { readOnly: true, idempotent: true };

const markdownInput = (extra = {}) =>
  JSON.stringify({
    type: 'object',
    properties: {
      markdown: { type: 'string', description: 'The Markdown document.' },
      ...extra,
    },
    required: ['markdown'],
    additionalProperties: false,
  });

const TOOLS = {
  to_text: {
    description:
      'Convert Markdown to plain text: markup removed; paragraphs, list bullets, quotes and table rows kept readable.',
    input: markdownInput({
      keep_code: { type: 'boolean', description: 'Keep code blocks (default true).' },
      show_urls: { type: 'boolean', description: 'Write each link URL after its text (default false).' },
    }),
    output: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    run: (input) => ({
      text: toText(input.markdown, { keepCode: input.keep_code ?? true, showUrls: input.show_urls ?? false }),
    }),
  },
  outline: {
    description: 'List the headings of a Markdown document with their levels, GitHub anchors and lines, and a table of contents.',
    input: markdownInput({
      max_level: { type: 'integer', minimum: 1, maximum: 6, description: 'Deepest heading level to include (default 6).' },
    }),
    output: null,
    run: (input) => outline(input.markdown, { maxLevel: input.max_level ?? 6 }),
  },
  links: {
    description: 'Extract every link, image and autolink of a Markdown document, with its text, URL, title and line.',
    input: markdownInput(),
    output: null,
    run: (input) => ({ links: links(input.markdown) }),
  },
  stats: {
    description: 'Count the words, characters and blocks of a Markdown document and estimate its reading time.',
    input: markdownInput({
      words_per_minute: { type: 'integer', minimum: 50, maximum: 2000, description: 'Reading speed (default 230).' },
    }),
    output: null,
    run: (input) => stats(input.markdown, { wordsPerMinute: input.words_per_minute ?? 230 }),
  },
};

export function describe() {
  return Object.entries(TOOLS).map(([name, tool]) => ({
    name,
    description: tool.description,
    inputSchema: tool.input,
    outputSchema: tool.output ? JSON.stringify(tool.output) : undefined,
    behavior: PURE,
  }));
}

export function invoke(name, input) {
  const tool = TOOLS[name];
  if (!tool) throw { tag: 'invalid-input', val: `no tool named \`${name}\`` };
  let args;
  try {
    args = JSON.parse(input);
  } catch (e) {
    throw { tag: 'invalid-input', val: `the input is not JSON: ${e.message}` };
  }
  if (typeof args.markdown !== 'string') throw { tag: 'invalid-input', val: '`markdown` must be a string' };
  try {
    const output = tool.run(args);
    log('debug', `${name}: ${args.markdown.length} characters in`);
    return JSON.stringify(output);
  } catch (e) {
    throw { tag: 'failed', val: `${name} failed: ${e?.message ?? e}` };
  }
}
