"""Unit tests of the Python tool's logic, run natively:
python3 -m unittest discover -s tools/py-units
"""

import math
import unittest

import stats
import units


class UnitsTest(unittest.TestCase):
    def convert(self, value, source, target):
        return units.convert(value, source, target)[0]

    def test_compound_and_prefixed_units(self):
        self.assertAlmostEqual(self.convert(100, "km/h", "mph"), 62.137119223733, places=9)
        self.assertAlmostEqual(self.convert(1, "kWh", "MJ"), 3.6)
        self.assertAlmostEqual(self.convert(1, "m2", "ft^2"), 10.763910416709722)
        self.assertAlmostEqual(self.convert(1, "GiB", "MB"), 1073.741824)
        self.assertAlmostEqual(self.convert(5, "ms", "us"), 5000)

    def test_temperatures(self):
        self.assertAlmostEqual(self.convert(212, "degF", "degC"), 100)
        self.assertAlmostEqual(self.convert(0, "degC", "K"), 273.15)
        with self.assertRaises(units.UnitError):
            self.convert(-300, "degC", "degF")

    def test_mismatched_dimensions_and_unknown_units(self):
        with self.assertRaisesRegex(units.UnitError, "does not convert"):
            self.convert(1, "m", "s")
        with self.assertRaisesRegex(units.UnitError, "unknown unit `furlong`"):
            self.convert(1, "furlong", "m")


class StatsTest(unittest.TestCase):
    def test_describe(self):
        out = stats.describe([1, 2, 2, 3, 4], [0.9])
        self.assertEqual(out["modes"], [2.0])
        self.assertAlmostEqual(out["stdev_sample"], 1.140175425099138)
        self.assertAlmostEqual(out["quantiles"]["0.9"], 3.6)

    def test_regression(self):
        out = stats.regression([1, 2, 3], [2, 4, 6])
        self.assertAlmostEqual(out["slope"], 2)
        self.assertAlmostEqual(out["r"], 1)
        with self.assertRaises(stats.StatsError):
            stats.regression([1, 1], [1, 2])

    def test_bad_data(self):
        with self.assertRaisesRegex(stats.StatsError, r"data\[1\]"):
            stats.describe([1, math.inf])


if __name__ == "__main__":
    unittest.main()
