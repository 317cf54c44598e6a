"""Unit conversion with dimensional analysis.

A unit expression is a product of unit terms with optional powers, separated
by `*`, `/` or spaces: `km/h`, `kg*m/s^2`, `m2`, `W h`. Every named unit has a
scale factor to SI and a dimension vector over the seven SI base dimensions
(plus `bit` for information). Two expressions convert when their dimensions
are equal. Temperatures with an offset (degC, degF) convert only on their own.
"""

import math

# Base dimensions, in order.
DIMENSIONS = ("m", "kg", "s", "A", "K", "mol", "cd", "bit")


def _dim(**powers):
    return tuple(powers.get(name, 0) for name in DIMENSIONS)


LENGTH = _dim(m=1)
MASS = _dim(kg=1)
TIME = _dim(s=1)
CURRENT = _dim(A=1)
TEMPERATURE = _dim(K=1)
AMOUNT = _dim(mol=1)
LUMINOUS = _dim(cd=1)
INFORMATION = _dim(bit=1)
NONE = _dim()
FORCE = _dim(kg=1, m=1, s=-2)
ENERGY = _dim(kg=1, m=2, s=-2)
POWER = _dim(kg=1, m=2, s=-3)
PRESSURE = _dim(kg=1, m=-1, s=-2)
VOLUME = _dim(m=3)
AREA = _dim(m=2)
CHARGE = _dim(A=1, s=1)
VOLTAGE = _dim(kg=1, m=2, s=-3, A=-1)
FREQUENCY = _dim(s=-1)

# name -> (factor to SI, dimension, takes SI prefixes)
UNITS = {
    # length
    "m": (1.0, LENGTH, True),
    "in": (0.0254, LENGTH, False),
    "ft": (0.3048, LENGTH, False),
    "yd": (0.9144, LENGTH, False),
    "mi": (1609.344, LENGTH, False),
    "nmi": (1852.0, LENGTH, False),
    "au": (149597870700.0, LENGTH, False),
    "ly": (9460730472580800.0, LENGTH, False),
    # mass
    "g": (1e-3, MASS, True),
    "t": (1000.0, MASS, False),
    "lb": (0.45359237, MASS, False),
    "oz": (0.028349523125, MASS, False),
    "st": (6.35029318, MASS, False),
    # time
    "s": (1.0, TIME, True),
    "min": (60.0, TIME, False),
    "h": (3600.0, TIME, False),
    "day": (86400.0, TIME, False),
    "week": (604800.0, TIME, False),
    "year": (31557600.0, TIME, False),
    # other base units
    "A": (1.0, CURRENT, True),
    "K": (1.0, TEMPERATURE, True),
    "mol": (1.0, AMOUNT, True),
    "cd": (1.0, LUMINOUS, True),
    # information
    "bit": (1.0, INFORMATION, True),
    "B": (8.0, INFORMATION, True),
    "KiB": (8.0 * 1024, INFORMATION, False),
    "MiB": (8.0 * 1024**2, INFORMATION, False),
    "GiB": (8.0 * 1024**3, INFORMATION, False),
    "TiB": (8.0 * 1024**4, INFORMATION, False),
    # derived
    "N": (1.0, FORCE, True),
    "lbf": (4.4482216152605, FORCE, False),
    "J": (1.0, ENERGY, True),
    "cal": (4.184, ENERGY, True),
    "Wh": (3600.0, ENERGY, True),
    "eV": (1.602176634e-19, ENERGY, True),
    "BTU": (1055.05585262, ENERGY, False),
    "W": (1.0, POWER, True),
    "hp": (745.69987158227, POWER, False),
    "Pa": (1.0, PRESSURE, True),
    "bar": (1e5, PRESSURE, True),
    "atm": (101325.0, PRESSURE, False),
    "psi": (6894.757293168, PRESSURE, False),
    "mmHg": (133.322387415, PRESSURE, False),
    "L": (1e-3, VOLUME, True),
    "l": (1e-3, VOLUME, True),
    "gal": (3.785411784e-3, VOLUME, False),
    "qt": (9.46352946e-4, VOLUME, False),
    "pt": (4.73176473e-4, VOLUME, False),
    "cup": (2.365882365e-4, VOLUME, False),
    "floz": (2.95735295625e-5, VOLUME, False),
    "ha": (1e4, AREA, False),
    "acre": (4046.8564224, AREA, False),
    "C": (1.0, CHARGE, True),
    "V": (1.0, VOLTAGE, True),
    "Hz": (1.0, FREQUENCY, True),
    "rpm": (1.0 / 60.0, FREQUENCY, False),
    "mph": (0.44704, _dim(m=1, s=-1), False),
    "kn": (1852.0 / 3600.0, _dim(m=1, s=-1), False),
    "percent": (0.01, NONE, False),
    "%": (0.01, NONE, False),
}

# Temperatures with an offset: value_in_K = (value + offset) * factor.
AFFINE = {
    "degC": (273.15, 1.0),
    "°C": (273.15, 1.0),
    "degF": (459.67, 5.0 / 9.0),
    "°F": (459.67, 5.0 / 9.0),
}

PREFIXES = {
    "Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9,
    "M": 1e6, "k": 1e3, "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2,
    "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15,
}


class UnitError(ValueError):
    """An expression that is not a unit, or units that do not convert."""


def lookup(term):
    """Factor and dimension of one unit name, with an optional SI prefix."""
    if term in UNITS:
        factor, dim, _ = UNITS[term]
        return factor, dim
    # Longest prefix first, so `da` wins over `d`.
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        if term.startswith(prefix) and len(term) > len(prefix):
            rest = term[len(prefix):]
            if rest in UNITS and UNITS[rest][2]:
                factor, dim, _ = UNITS[rest]
                return factor * PREFIXES[prefix], dim
    raise UnitError(f"unknown unit `{term}`")


def _split_power(term):
    for sep in ("^", "**"):
        if sep in term:
            name, power = term.split(sep, 1)
            try:
                return name, int(power)
            except ValueError:
                raise UnitError(f"bad power in `{term}`") from None
    # Trailing digits: m2, s-1.
    i = len(term)
    while i > 0 and (term[i - 1].isdigit() or (term[i - 1] == "-" and i < len(term))):
        i -= 1
    if 0 < i < len(term) and term[i:].lstrip("-").isdigit():
        return term[:i], int(term[i:])
    return term, 1


def parse(expression):
    """Factor to SI and dimension vector of a unit expression."""
    text = expression.strip()
    if not text:
        raise UnitError("empty unit")
    factor, dim = 1.0, [0] * len(DIMENSIONS)
    sign = 1
    token = ""
    tokens = []
    for ch in text.replace("·", "*"):
        if ch in "*/ ":
            if token:
                tokens.append((sign, token))
                token = ""
            if ch == "/":
                sign = -1
        else:
            token += ch
    if token:
        tokens.append((sign, token))
    if not tokens:
        raise UnitError(f"no unit in `{expression}`")
    for sign, term in tokens:
        if term == "1":
            continue
        name, power = _split_power(term)
        unit_factor, unit_dim = lookup(name)
        factor *= unit_factor ** (sign * power)
        for i, d in enumerate(unit_dim):
            dim[i] += d * sign * power
    return factor, tuple(dim)


def describe_dimension(dim):
    parts = []
    for name, power in zip(DIMENSIONS, dim):
        if power == 1:
            parts.append(name)
        elif power:
            parts.append(f"{name}^{power}")
    return "*".join(parts) or "1"


def convert(value, source, target):
    """Convert `value` from unit `source` to unit `target`."""
    if not math.isfinite(value):
        raise UnitError("the value must be a finite number")
    if source in AFFINE or target in AFFINE:
        return _convert_temperature(value, source, target)
    f1, d1 = parse(source)
    f2, d2 = parse(target)
    if d1 != d2:
        raise UnitError(
            f"`{source}` ({describe_dimension(d1)}) does not convert to "
            f"`{target}` ({describe_dimension(d2)})"
        )
    return value * f1 / f2, d1


def _convert_temperature(value, source, target):
    def to_kelvin(v, unit):
        if unit in AFFINE:
            offset, factor = AFFINE[unit]
            return (v + offset) * factor
        factor, dim = parse(unit)
        if dim != TEMPERATURE:
            raise UnitError(f"`{unit}` is not a temperature")
        return v * factor

    def from_kelvin(k, unit):
        if unit in AFFINE:
            offset, factor = AFFINE[unit]
            return k / factor - offset
        factor, dim = parse(unit)
        if dim != TEMPERATURE:
            raise UnitError(f"`{unit}` is not a temperature")
        return k / factor

    kelvin = to_kelvin(value, source)
    if kelvin < 0:
        raise UnitError(f"{value} {source} is below absolute zero")
    return from_kelvin(kelvin, target), TEMPERATURE
