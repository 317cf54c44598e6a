"""Tests of tool.py, run natively: python3 -m unittest"""

import unittest

import tool


class ToolTest(unittest.TestCase):
    def test_greets(self):
        self.assertEqual(tool.run({"name": "Ada", "times": 2}), {"text": "Hello, Ada! Hello, Ada!"})

    def test_refuses_bad_input(self):
        with self.assertRaises(tool.InvalidInput):
            tool.run({"name": "Ada", "times": 0})


if __name__ == "__main__":
    unittest.main()
