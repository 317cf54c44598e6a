// The `{{name}}` component: glue between the `toolhost:tool` world and tool.js.
// Build: npm run build

import { log } from 'toolhost:tool/host@0.1.0';
import { InvalidInput, SPEC, run } from './tool.js';

export function describe() {
  return [
    {
      name: SPEC.name,
      description: SPEC.description,
      inputSchema: JSON.stringify(SPEC.inputSchema),
      outputSchema: JSON.stringify(SPEC.outputSchema),
      behavior: { readOnly: true, idempotent: true },
    },
  ];
}

export function invoke(name, input) {
  if (name !== SPEC.name) throw { tag: 'invalid-input', val: `no tool named \`${name}\`` };
  log('debug', `${name} called`);
  try {
    return JSON.stringify(run(JSON.parse(input)));
  } catch (e) {
    throw { tag: e instanceof InvalidInput ? 'invalid-input' : 'failed', val: String(e?.message ?? e) };
  }
}
