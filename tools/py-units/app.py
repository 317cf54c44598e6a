"""The `units` tool component: unit conversion and statistics, in Python.

Built with componentize-py against `wit/tool.wit` (world `tool`).
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    Behavior,
    ToolError_Failed,
    ToolError_InvalidInput,
    ToolSpec,
)

import stats
import units

PURE = Behavior.READ_ONLY | Behavior.IDEMPOTENT

NUMBERS = {"type": "array", "items": {"type": "number"}, "minItems": 1}

SPECS = [
    ToolSpec(
        name="convert",
        description=(
            "Convert a quantity between units, checking dimensions: lengths, masses, "
            "times, temperatures (K, degC, degF), data sizes (bit, B, KiB, MB...), "
            "energy, power, pressure, volume, area, speed and compound units such as "
            "km/h, kg*m/s^2 or m^2. SI prefixes work on SI units (km, mg, GHz, kWh)."
        ),
        input_schema=json.dumps({
            "type": "object",
            "properties": {
                "value": {"type": "number", "description": "The quantity to convert."},
                "from": {"type": "string", "description": "Its unit, e.g. `mi`, `km/h`, `degF`."},
                "to": {"type": "string", "description": "The unit wanted, of the same dimension."},
            },
            "required": ["value", "from", "to"],
            "additionalProperties": False,
        }),
        output_schema=json.dumps({
            "type": "object",
            "properties": {
                "value": {"type": "number"},
                "unit": {"type": "string"},
                "dimension": {"type": "string"},
            },
            "required": ["value", "unit", "dimension"],
        }),
        behavior=PURE,
    ),
    ToolSpec(
        name="stats",
        description=(
            "Descriptive statistics of a list of numbers (count, sum, mean, median, "
            "modes, min, max, range, variance and standard deviation, quartiles, IQR, "
            "geometric mean, chosen quantiles); with `y` also a least-squares line "
            "and correlation of `data` (x) against `y`."
        ),
        input_schema=json.dumps({
            "type": "object",
            "properties": {
                "data": dict(NUMBERS, description="The numbers (the x values when `y` is given)."),
                "y": dict(NUMBERS, description="Optional y values, as many as `data`."),
                "quantiles": {
                    "type": "array",
                    "items": {"type": "number", "minimum": 0, "maximum": 1},
                    "description": "Extra quantiles to report, each from 0 to 1.",
                },
            },
            "required": ["data"],
            "additionalProperties": False,
        }),
        output_schema=None,
        behavior=PURE,
    ),
]


def _convert(args):
    value, unit_from, unit_to = args["value"], args["from"], args["to"]
    result, dim = units.convert(float(value), unit_from, unit_to)
    host.log(host.Level.DEBUG, f"{value} {unit_from} -> {result} {unit_to}")
    return {"value": result, "unit": unit_to, "dimension": units.describe_dimension(dim)}


def _stats(args):
    out = stats.describe(args["data"], args.get("quantiles"))
    if args.get("y") is not None:
        out["regression"] = stats.regression(args["data"], args["y"])
    return out


TOOLS = {"convert": _convert, "stats": _stats}


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return SPECS

    def invoke(self, name, input):
        tool = TOOLS.get(name)
        if tool is None:
            raise Err(ToolError_InvalidInput(f"no tool named `{name}`"))
        try:
            args = json.loads(input)
        except ValueError as e:
            raise Err(ToolError_InvalidInput(f"the input is not JSON: {e}"))
        try:
            return json.dumps(tool(args), allow_nan=False)
        except (units.UnitError, stats.StatsError) as e:
            raise Err(ToolError_InvalidInput(str(e)))
        except (KeyError, TypeError) as e:
            raise Err(ToolError_InvalidInput(f"bad input: {e}"))
        except (ValueError, OverflowError, ArithmeticError) as e:
            raise Err(ToolError_Failed(str(e)))
