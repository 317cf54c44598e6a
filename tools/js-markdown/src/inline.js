// Inline Markdown: code spans, emphasis, strong, strikethrough, links,
// images, autolinks, hard breaks, backslash escapes, entities and raw HTML.
// `render` turns inline text into plain text and collects the links.

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '©', reg: '®', hellip: '…', mdash: '—', ndash: '–' };

export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-zA-Z]+);/g, (all, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '\ufffd';
    }
    return ENTITIES[name] ?? all;
  });
}

// Finds the `]` that closes the `[` at `open`, honouring nesting and escapes.
function closeBracket(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '[') depth++;
    else if (text[i] === ']' && --depth === 0) return i;
  }
  return -1;
}

// Parses `(url "title")` after a link's text; returns [url, end] or null.
function destination(text, at) {
  if (text[at] !== '(') return null;
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) {
      const inner = text.slice(at + 1, i).trim();
      const m = /^<?([^\s>]*)>?(?:\s+["'(](.*)["')])?$/.exec(inner);
      return m ? { url: m[1], title: m[2] ?? null, end: i + 1 } : null;
    }
  }
  return null;
}

// Renders inline Markdown to plain text. `links` (if given) collects every
// link and image as { kind, text, url, title }. `showUrls` appends " (url)"
// after link text that differs from its URL.
export function render(text, { links = null, showUrls = false, refs = {} } = {}) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length && /[!-\/:-@\[-`{-~]/.test(text[i + 1])) {
      out += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '\\' && text[i + 1] === '\n') {
      out += '\n';
      i += 2;
      continue;
    }
    if (ch === '`') {
      const ticks = /^`+/.exec(text.slice(i))[0];
      const close = text.indexOf(ticks, i + ticks.length);
      if (close >= 0) {
        let code = text.slice(i + ticks.length, close).replace(/\n/g, ' ');
        if (/^ .* $/.test(code) && code.trim()) code = code.slice(1, -1);
        out += code;
        i = close + ticks.length;
        continue;
      }
      out += ticks;
      i += ticks.length;
      continue;
    }
    if (ch === '<') {
      const auto = /^<((?:https?|mailto|ftp):[^\s<>]*|[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>/.exec(text.slice(i));
      if (auto) {
        const url = auto[1].includes(':') ? auto[1] : `mailto:${auto[1]}`;
        links?.push({ kind: 'autolink', text: auto[1], url, title: null });
        out += auto[1];
        i += auto[0].length;
        continue;
      }
      const tag = /^<\/?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?\/?>|^<!--[\s\S]*?-->/.exec(text.slice(i));
      if (tag) {
        if (/^<br\s*\/?>$/i.test(tag[0])) out += '\n';
        i += tag[0].length;
        continue;
      }
    }
    const image = ch === '!' && text[i + 1] === '[';
    if (ch === '[' || image) {
      const open = image ? i + 1 : i;
      const close = closeBracket(text, open);
      if (close > 0) {
        const label = text.slice(open + 1, close);
        let target = destination(text, close + 1);
        let end = target?.end;
        if (!target) {
          // Reference links: [text][ref], [text][] and [ref].
          const ref = /^\[([^\]]*)\]/.exec(text.slice(close + 1));
          const key = (ref && ref[1] ? ref[1] : label).trim().toLowerCase();
          if (refs[key]) {
            target = refs[key];
            end = close + 1 + (ref ? ref[0].length : 0);
          }
        }
        if (target) {
          const inner = render(label, { links: image ? null : links, showUrls, refs });
          links?.push({ kind: image ? 'image' : 'link', text: inner, url: target.url, title: target.title ?? null });
          out += inner;
          if (showUrls && !image && target.url && target.url !== inner) out += ` (${target.url})`;
          i = end;
          continue;
        }
      }
    }
    if (ch === '*' || ch === '_' || ch === '~') {
      const run = new RegExp(`^\\${ch}+`).exec(text.slice(i))[0];
      const width = Math.min(run.length, ch === '~' ? 2 : 3);
      const marker = ch.repeat(width);
      const close = text.indexOf(marker, i + width);
      const intraword = ch === '_' && /\w/.test(text[i - 1] ?? '');
      if (close > i + width && !/\s/.test(text[i + width]) && !intraword && (ch !== '~' || width === 2)) {
        out += render(text.slice(i + width, close), { links, showUrls, refs });
        i = close + width;
        continue;
      }
      out += run;
      i += run.length;
      continue;
    }
    if (ch === '&') {
      const ent = /^&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[a-zA-Z]+);/.exec(text.slice(i));
      if (ent) {
        out += decodeEntities(ent[0]);
        i += ent[0].length;
        continue;
      }
    }
    if (ch === ' ' && /^ {2,}\n/.test(text.slice(i))) {
      out += '\n';
      i = text.indexOf('\n', i) + 1;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}
