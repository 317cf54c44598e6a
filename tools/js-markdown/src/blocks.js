// Block structure of Markdown (CommonMark's common subset plus GFM tables):
// ATX and setext headings, paragraphs, block quotes, bullet and ordered
// lists (nested by indentation), fenced and indented code, thematic breaks,
// tables and HTML blocks. Each block remembers the line it starts on.

const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^`\s]*)?.*$/;
const BREAK = /^ {0,3}((\*[ \t]*){3,}|(-[ \t]*){3,}|(_[ \t]*){3,})$/;
const BULLET = /^( {0,3})([-*+])([ \t]+|$)(.*)$/;
const ORDERED = /^( {0,3})(\d{1,9})([.)])([ \t]+|$)(.*)$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const TABLE_RULE = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const HTML_BLOCK = /^ {0,3}<(\/?[a-zA-Z][a-zA-Z0-9-]*|!--)/;

const blank = (line) => /^[ \t]*$/.test(line);

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  const cells = [];
  let cell = '';
  for (let i = 0; i < row.length; i++) {
    if (row[i] === '\\' && row[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (row[i] === '|') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += row[i];
    }
  }
  cells.push(cell.trim());
  return cells;
}

function listItemStart(line) {
  let m = BULLET.exec(line);
  if (m) return { ordered: false, indent: m[1].length + 1 + Math.max(m[3].length, 1), text: m[4], marker: m[2] };
  m = ORDERED.exec(line);
  if (m) {
    return {
      ordered: true,
      start: Number(m[2]),
      indent: m[1].length + m[2].length + 1 + Math.max(m[4].length, 1),
      text: m[5],
      marker: m[3],
    };
  }
  return null;
}

// Parses `lines` (an array of strings) into blocks; `first` is the line
// number of lines[0], counted from 1.
export function parseBlocks(lines, first = 1) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const lineNo = first + i;
    if (blank(line)) {
      i++;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const [, indent, fence, info] = m;
      const body = [];
      i++;
      while (i < lines.length) {
        const close = lines[i].trim();
        if (close.startsWith(fence[0].repeat(fence.length)) && /^[`~]+$/.test(close)) {
          i++;
          break;
        }
        body.push(lines[i].startsWith(indent) ? lines[i].slice(indent.length) : lines[i].trimStart());
        i++;
      }
      blocks.push({ type: 'code', lang: info || null, text: body.join('\n'), line: lineNo });
      continue;
    }
    if ((m = ATX.exec(line))) {
      blocks.push({ type: 'heading', level: m[1].length, text: (m[2] || '').trim(), line: lineNo });
      i++;
      continue;
    }
    if (BREAK.test(line)) {
      blocks.push({ type: 'break', line: lineNo });
      i++;
      continue;
    }
    if (/^( {4}|\t)/.test(line)) {
      const body = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || blank(lines[i]))) {
        body.push(lines[i].replace(/^( {4}|\t)/, ''));
        i++;
      }
      while (body.length && blank(body[body.length - 1])) body.pop();
      blocks.push({ type: 'code', lang: null, text: body.join('\n'), line: lineNo });
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && !blank(lines[i])) {
        const q = QUOTE.exec(lines[i]);
        inner.push(q ? q[1] : lines[i]);
        i++;
      }
      blocks.push({ type: 'quote', children: parseBlocks(inner, lineNo), line: lineNo });
      continue;
    }
    const item = listItemStart(line);
    if (item) {
      const list = { type: 'list', ordered: item.ordered, start: item.start ?? null, items: [], line: lineNo };
      while (i < lines.length) {
        const start = listItemStart(lines[i]);
        if (!start || start.ordered !== list.ordered) break;
        const itemLine = first + i;
        const body = [start.text];
        i++;
        while (i < lines.length) {
          const next = lines[i];
          if (blank(next)) {
            // A blank line continues the item only if indented text follows.
            if (i + 1 < lines.length && lines[i + 1].startsWith(' '.repeat(start.indent))) {
              body.push('');
              i++;
              continue;
            }
            break;
          }
          if (next.startsWith(' '.repeat(start.indent))) {
            body.push(next.slice(start.indent));
          } else if (listItemStart(next) || FENCE.test(next) || ATX.test(next) || BREAK.test(next)) {
            break;
          } else {
            body.push(next.trim()); // lazy continuation
          }
          i++;
        }
        let checked = null;
        const task = /^\[([ xX])\][ \t]+/.exec(body[0]);
        if (task) {
          checked = task[1] !== ' ';
          body[0] = body[0].slice(task[0].length);
        }
        list.items.push({ children: parseBlocks(body, itemLine), checked, line: itemLine });
        while (i < lines.length && blank(lines[i]) && i + 1 < lines.length && listItemStart(lines[i + 1])) i++;
      }
      blocks.push(list);
      continue;
    }
    if (HTML_BLOCK.test(line)) {
      const body = [];
      while (i < lines.length && !blank(lines[i])) body.push(lines[i++]);
      blocks.push({ type: 'html', text: body.join('\n'), line: lineNo });
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      const header = splitRow(line);
      const rows = [];
      i += 2;
      while (i < lines.length && !blank(lines[i]) && lines[i].includes('|')) rows.push(splitRow(lines[i++]));
      blocks.push({ type: 'table', header, rows, line: lineNo });
      continue;
    }
    // A paragraph runs to a blank line or the start of another block.
    const para = [line.trim()];
    i++;
    while (i < lines.length && !blank(lines[i])) {
      const next = lines[i];
      const setext = SETEXT.exec(next);
      if (setext) {
        blocks.push({ type: 'heading', level: setext[1][0] === '=' ? 1 : 2, text: para.join(' '), line: lineNo });
        para.length = 0;
        i++;
        break;
      }
      if (ATX.test(next) || FENCE.test(next) || QUOTE.test(next) || BREAK.test(next) || listItemStart(next)) break;
      para.push(next.trim());
      i++;
    }
    if (para.length) blocks.push({ type: 'paragraph', text: para.join('\n'), line: lineNo });
  }
  return blocks;
}
