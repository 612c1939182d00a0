"""A cheaper constructor for the one enum in `evaluate`'s argument, which runs on every request.

componentize-py 0.25.1 turns each argument of an exported function into Python objects by
calling the constructors of the generated bindings module (`wit_world.exports.policy`): the
record classes with their fields in order, the enum class with the discriminant. It looks each
constructor up by name once, when the component starts, after the application module (and so
this one) has been imported; that start happens at build time and is kept in the component's
snapshot. What the bindings module holds under those names when `install()` returns is what
lifts every request afterwards.

The generated enum constructor, `ProgramKind(discriminant)`, goes through the `Enum`
metaclass's `__call__` and `Enum.__new__`: two Python frames, keyword defaults and a dict
lookup on every decision. `install()` puts in its place the C-level `tuple.__getitem__` over
the members in discriminant order, which returns the very same member objects with no Python
frame. Measured with `BENCH_POLICY_ALSO` (docs/PERFORMANCE.md, Policy and Python): about
0.6 us per decision in a tight loop and 2 us of a request's policy cost. Replacing the record
classes with named tuples as well was measured and dropped (no faster than the dataclasses).

Nothing here is visible to the host, and the Python runtime export (client scripts) has no
enum argument. Code that names the enum's members keeps using the generated class, kept here
as `ProgramKind`. If a later componentize-py looked the constructors up before importing the
application, the generated one would simply stay in use (same behaviour, the old cost).
"""

from wit_world.exports import policy as wit_policy

# The generated enum class, for comparisons with its members (`lifting.PYTHON_SCRIPT`).
ProgramKind = wit_policy.ProgramKind
PYTHON_SCRIPT = ProgramKind.PYTHON_SCRIPT
RISCV_PROGRAM = ProgramKind.RISCV_PROGRAM


def install():
    """Replaces the enum's constructor in the bindings module (see the module's text)."""
    members = tuple(sorted(ProgramKind, key=lambda m: m.value))
    if [m.value for m in members] != list(range(len(members))):
        raise AssertionError("ProgramKind's discriminants are not 0..n")
    lift = members.__getitem__
    # The same member for every discriminant as the generated constructor.
    for m in members:
        if lift(m.value) is not ProgramKind(m.value):
            raise AssertionError(f"ProgramKind({m.value}) lifts differently")
    wit_policy.ProgramKind = lift
