// The logic of the `{{name}}` tool: plain JavaScript, testable with `node --test`.

export class InvalidInput extends Error {}

export const SPEC = {
  name: '{{name}}',
  description: 'Greet someone by name.',
  inputSchema: {
    type: 'object',
    properties: {
      name: { type: 'string', description: 'Who to greet.' },
      times: { type: 'integer', minimum: 1, maximum: 10, description: 'How many times (default 1).' },
    },
    required: ['name'],
    additionalProperties: false,
  },
  outputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

// Runs the tool on its decoded JSON input; returns the JSON output.
export function run(args) {
  const times = args.times ?? 1;
  if (times < 1 || times > 10) throw new InvalidInput('times must be from 1 to 10');
  return { text: Array(times).fill(`Hello, ${args.name}!`).join(' ') };
}
