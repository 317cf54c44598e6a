"""The `{{name}}` component: glue between the `toolhost:tool` world and tool.py.

Build: componentize-py -d wit -w tool componentize app -o {{name}}.wasm
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import Behavior, ToolError_Failed, ToolError_InvalidInput, ToolSpec

import tool


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return [
            ToolSpec(
                name=tool.SPEC["name"],
                description=tool.SPEC["description"],
                input_schema=json.dumps(tool.SPEC["input_schema"]),
                output_schema=json.dumps(tool.SPEC["output_schema"]),
                behavior=Behavior.READ_ONLY | Behavior.IDEMPOTENT,
            )
        ]

    def invoke(self, name, input):
        if name != tool.SPEC["name"]:
            raise Err(ToolError_InvalidInput(f"no tool named `{name}`"))
        host.log(host.Level.DEBUG, f"{name} called")
        try:
            return json.dumps(tool.run(json.loads(input)))
        except tool.InvalidInput as e:
            raise Err(ToolError_InvalidInput(str(e)))
        except Exception as e:  # anything else is a failure the model can read
            raise Err(ToolError_Failed(f"{type(e).__name__}: {e}"))
