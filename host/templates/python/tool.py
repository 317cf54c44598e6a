"""The logic of the `{{name}}` tool: plain Python, testable without WebAssembly."""


class InvalidInput(ValueError):
    """The input was wrong; the message tells the model how."""


SPEC = {
    "name": "{{name}}",
    "description": "Greet someone by name.",
    "input_schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Who to greet."},
            "times": {"type": "integer", "minimum": 1, "maximum": 10, "description": "How many times (default 1)."},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "output_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def run(args):
    """Runs the tool on its decoded JSON input; returns the JSON output."""
    times = args.get("times", 1)
    if not 1 <= times <= 10:
        raise InvalidInput("times must be from 1 to 10")
    return {"text": " ".join([f"Hello, {args['name']}!"] * times)}
