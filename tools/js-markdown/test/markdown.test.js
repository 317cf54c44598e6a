// Unit tests of the Markdown logic, run natively with `node --test tools/js-markdown`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { links, outline, stats, toText } from '../src/markdown.js';

const DOC = `# Title

Some *emphasis*, **strong**, \`code\` and a [link](https://example.org "Ex").

Setext heading
--------------

- one
- two with ![img](pic.png)
  - nested

1. first
2. [x] done

> quoted **text**

| a | b |
|---|---|
| 1 | [r][ref] |

\`\`\`js
let x = 1;
\`\`\`

## Title

[ref]: https://ref.example/ "R"
`;

test('to_text strips markup and keeps structure', () => {
  const text = toText(DOC);
  assert.match(text, /^Title\n\nSome emphasis, strong, code and a link\./);
  assert.match(text, /- one\n- two with img\n  - nested/);
  assert.match(text, /1\. first\n2\. \[x\] done/);
  assert.match(text, /> quoted text/);
  assert.match(text, /a\tb\n1\tr/);
  assert.match(text, /let x = 1;/);
  assert.doesNotMatch(toText(DOC, { keepCode: false }), /let x/);
  assert.match(toText(DOC, { showUrls: true }), /a link \(https:\/\/example\.org\)/);
});

test('outline numbers repeated anchors like GitHub', () => {
  const { headings, toc } = outline(DOC);
  assert.deepEqual(
    headings.map((h) => [h.level, h.text, h.anchor, h.line]),
    [[1, 'Title', 'title', 1], [2, 'Setext heading', 'setext-heading', 5], [2, 'Title', 'title-1', 25]],
  );
  assert.equal(toc.split('\n')[1], '  - [Setext heading](#setext-heading)');
});

test('links finds inline, reference and image links', () => {
  const found = links(DOC).map((l) => [l.kind, l.text, l.url]);
  assert.deepEqual(found, [
    ['link', 'link', 'https://example.org'],
    ['image', 'img', 'pic.png'],
    ['link', 'r', 'https://ref.example/'],
  ]);
});

test('stats counts words and blocks', () => {
  const s = stats('# Hi\n\nOne two three.\n');
  assert.equal(s.words, 4);
  assert.deepEqual(s.blocks, { heading: 1, paragraph: 1 });
});

test('escapes and entities', () => {
  assert.equal(toText('\\*not emphasis\\* &amp; &#x41;'), '*not emphasis* & A');
  assert.equal(toText('snake_case_name'), 'snake_case_name');
});

test('anchors and words in other scripts', () => {
  assert.equal(outline('# Größe — 大きさ!').headings[0].anchor, 'größe--大きさ');
  assert.equal(stats('Ünïcode wörds, 漢字 ok').words, 4);
});
