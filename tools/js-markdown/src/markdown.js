// Markdown documents: plain text, an outline of the headings, the links,
// and word counts. Pure functions over a string; index.js exposes them as tools.

import { parseBlocks } from './blocks.js';
import { decodeEntities, render } from './inline.js';

const REF_DEF = /^ {0,3}\[([^\]]+)\]:[ \t]*<?([^\s>]+)>?(?:[ \t]+["'(](.*)["')])?[ \t]*$/;

// Splits the document into lines, pulling out link reference definitions.
function prepare(markdown) {
  const refs = {};
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n').map((line) => {
    const m = REF_DEF.exec(line);
    if (m) {
      refs[m[1].trim().toLowerCase()] = { url: m[2], title: m[3] ?? null };
      return '';
    }
    return line;
  });
  return { blocks: parseBlocks(lines), refs };
}

function indentLines(text, prefix, firstPrefix = prefix) {
  return text
    .split('\n')
    .map((line, i) => (i === 0 ? firstPrefix : prefix) + line)
    .join('\n');
}

function blocksToText(blocks, options, separator = '\n\n') {
  return blocks
    .map((block) => blockToText(block, options))
    .filter((text) => text !== null)
    .join(separator);
}

function blockToText(block, options) {
  const inline = (text) => render(text, options);
  switch (block.type) {
    case 'heading':
      return inline(block.text);
    case 'paragraph':
      return inline(block.text);
    case 'code':
      return options.keepCode ? block.text : null;
    case 'break':
      return options.breaks ? '---' : null;
    case 'html':
      return decodeEntities(block.text.replace(/<[^>]*>/g, '')).trim() || null;
    case 'quote':
      return indentLines(blocksToText(block.children, options), '> ');
    case 'table': {
      const rows = [block.header, ...block.rows].map((row) => row.map(inline).join('\t'));
      return rows.join('\n');
    }
    case 'list':
      return block.items
        .map((item, n) => {
          let bullet = block.ordered ? `${(block.start ?? 1) + n}. ` : '- ';
          if (item.checked !== null) bullet += item.checked ? '[x] ' : '[ ] ';
          const body = blocksToText(item.children, options, '\n') || '';
          return indentLines(body, ' '.repeat(bullet.length), bullet);
        })
        .join('\n');
    default:
      return null;
  }
}

// Markdown to plain text: markup removed, structure kept as blank lines,
// list bullets and quote marks.
export function toText(markdown, { keepCode = true, showUrls = false, breaks = false } = {}) {
  const { blocks, refs } = prepare(markdown);
  const text = blocksToText(blocks, { keepCode, showUrls, breaks, refs });
  return text.replace(/\n{3,}/g, '\n\n').trim();
}

// Letters and digits, in any script. (The componentized JS engine has no
// Unicode property escapes, so this spells out the punctuation blocks.)
function isWordChar(ch) {
  if (/[A-Za-z0-9]/.test(ch)) return true;
  const cp = ch.codePointAt(0);
  if (cp < 0xc0 || ch.trim() === '') return false;
  const punctuation = (cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xfe30 && cp <= 0xfe4f);
  return !punctuation && cp !== 0xd7 && cp !== 0xf7;
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to
// hyphens, repeats numbered.
export function slugify(text, seen) {
  let slug = [...text.toLowerCase()]
    .filter((ch) => isWordChar(ch) || ch === '_' || ch === '-' || /\s/.test(ch))
    .join('')
    .trim()
    .replace(/\s/g, '-');
  const base = slug;
  let n = seen.get(base) ?? 0;
  if (n > 0) slug = `${base}-${n}`;
  seen.set(base, n + 1);
  return slug;
}

function walk(blocks, visit) {
  for (const block of blocks) {
    visit(block);
    if (block.type === 'quote') walk(block.children, visit);
    if (block.type === 'list') for (const item of block.items) walk(item.children, visit);
  }
}

// The headings, in order, with their level, text, anchor and line.
export function outline(markdown, { maxLevel = 6 } = {}) {
  const { blocks, refs } = prepare(markdown);
  const seen = new Map();
  const headings = [];
  for (const block of blocks) {
    if (block.type !== 'heading') continue;
    const text = render(block.text, { refs });
    const anchor = slugify(text, seen);
    if (block.level <= maxLevel) headings.push({ level: block.level, text, anchor, line: block.line });
  }
  const minLevel = Math.min(...headings.map((h) => h.level));
  const toc = headings
    .map((h) => `${'  '.repeat(h.level - minLevel)}- [${h.text}](#${h.anchor})`)
    .join('\n');
  return { headings, toc };
}

// Every link, image and autolink, with the line of the block it is in.
export function links(markdown) {
  const { blocks, refs } = prepare(markdown);
  const found = [];
  const inline = (text, line) => {
    const here = [];
    render(text, { links: here, refs });
    for (const link of here) found.push({ ...link, line });
  };
  walk(blocks, (block) => {
    if (block.type === 'paragraph' || block.type === 'heading') inline(block.text, block.line);
    if (block.type === 'table') for (const row of [block.header, ...block.rows]) for (const cell of row) inline(cell, block.line);
  });
  return found;
}

// Words, characters, blocks and an estimated reading time.
export function stats(markdown, { wordsPerMinute = 230 } = {}) {
  const text = toText(markdown, { keepCode: false });
  const words = [];
  let word = '';
  for (const ch of text) {
    if (isWordChar(ch) || (word && /['’_-]/.test(ch))) {
      word += ch;
    } else if (word) {
      words.push(word);
      word = '';
    }
  }
  if (word) words.push(word);
  const counts = {};
  walk(prepare(markdown).blocks, (block) => {
    counts[block.type] = (counts[block.type] ?? 0) + 1;
  });
  return {
    words: words.length,
    characters: [...text].length,
    blocks: counts,
    reading_minutes: Math.round((words.length / wordsPerMinute) * 10) / 10,
  };
}
