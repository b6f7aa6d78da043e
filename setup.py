"""Packaging beyond what pyproject.toml can say: the zoo in specs/ (kept at the top of the checkout, where the README
and the tests name it) ships inside the installed package as ``netspec/specs``, so that ``netspec check resnet18``
works from a wheel. Everything else (the package data too) is in pyproject.toml."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["netspec", "netspec.*"]) + ["netspec.specs", "netspec.specs.blocks"],
    package_dir={"netspec.specs": "specs", "netspec.specs.blocks": "specs/blocks"},
)
