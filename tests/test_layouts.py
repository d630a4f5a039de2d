"""The packed arrays' layouts (``heli.layout``): each declared once, and the kernels held to them.

The kernels unpack a row of each packed array into names, in order; these tests read the kernels'
source and check that order against the layout's ``NAMES``, and that what each kernel returns has
the layout's width, so a column added to a layout and not to a kernel (or the other way round)
fails here, not as a helicopter that flies oddly.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pytest

from heli import control, dynamics
from heli.control import CONTROL_STATE_SIZE, PILOT_INPUT_SIZE, ControlIndex, ControllerState, PilotIndex, PilotInput
from heli.layout import Layout, column, columns
from heli.state import COMMAND_SIZE, STATE_SIZE, CommandIndex, StateIndex
from sim import hover_kernel, rc
from sim.hover_kernel import HOVER_STATE_SIZE, VEHICLE_NAMES, HoverState
from sim.view.shared import VEHICLE_FIELDS, VehicleRow

LAYOUTS = (StateIndex, CommandIndex, PilotIndex, ControlIndex, HoverState, VehicleRow)


def _function(function) -> ast.FunctionDef:
    (tree,) = ast.parse(textwrap.dedent(inspect.getsource(function))).body
    assert isinstance(tree, ast.FunctionDef)
    return tree


def _unpacked(function, argument: str) -> tuple[str, ...]:
    """The names a kernel unpacks its argument ``argument`` into (``a, b, c = argument``)."""
    for node in ast.walk(_function(function)):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Name)
            and node.value.id == argument
            and isinstance(node.targets[0], ast.Tuple)
        ):
            return tuple(element.id.lstrip("_") for element in node.targets[0].elts)  # type: ignore[attr-defined]
    raise AssertionError(f"{function.__name__} does not unpack {argument}")


def _tuple_widths(function) -> list[int]:
    """The widths of the tuple literals a kernel builds (its returned rows among them)."""
    return [len(node.elts) for node in ast.walk(_function(function)) if isinstance(node, ast.Tuple)]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.__name__)
def test_a_layout_numbers_its_columns_once_each_in_order(layout):
    covered = []
    for attribute in layout.DOCS:
        where = getattr(layout, attribute)
        covered += list(range(where.start, where.stop)) if isinstance(where, slice) else [where]
    assert covered == list(range(layout.SIZE)) and len(set(layout.NAMES)) == layout.SIZE
    assert all(attribute in layout.describe() for attribute in layout.DOCS)


def test_the_sizes_the_code_uses_are_the_layouts():
    assert (STATE_SIZE, COMMAND_SIZE, PILOT_INPUT_SIZE, CONTROL_STATE_SIZE, HOVER_STATE_SIZE, VEHICLE_FIELDS) == (
        24, 5, 7, 19, 10, 25,
    )  # fmt: skip


def test_the_physics_kernel_unpacks_and_returns_the_vehicle_state_and_command_in_their_layouts():
    assert _unpacked(dynamics._step_kernel, "x") == StateIndex.NAMES
    assert _unpacked(dynamics._step_kernel, "c") == CommandIndex.NAMES
    assert STATE_SIZE in _tuple_widths(dynamics._step_kernel)


def test_the_controller_kernel_unpacks_and_returns_its_state_and_the_pilots_in_their_layouts():
    assert _unpacked(control._control_kernel, "cs") == ControlIndex.NAMES
    assert _unpacked(control._control_kernel, "pilot") == PilotIndex.NAMES
    widths = _tuple_widths(control._control_kernel)
    assert CONTROL_STATE_SIZE in widths and COMMAND_SIZE in widths


def test_the_hover_pilot_and_the_decoding_keep_to_their_layouts():
    assert _unpacked(hover_kernel.hover_kernel, "s") == HoverState.NAMES
    assert _unpacked(hover_kernel.hover_kernel, "v") == VEHICLE_NAMES
    assert HOVER_STATE_SIZE in _tuple_widths(hover_kernel.hover_kernel)
    assert PILOT_INPUT_SIZE in _tuple_widths(rc.decode_kernel)


def test_named_columns_read_what_the_numbers_did():
    """The names stand for the columns the code used to number by hand."""
    state = ControllerState.initial(3)
    assert np.all(state.flight_mode == 1) and np.all(state.packed[:, ControlIndex.ON_GROUND] > 0.0)
    pilot = PilotInput.centred(2, arm=1.0, collective=0.25).packed
    assert pilot[0].tolist() == [0.0, 0.0, 0.0, 0.25, 1.0, 1.0, 1.0]  # roll, pitch, yaw, collective, arm, mode, valid
    assert (StateIndex.ROTOR_SPEED, StateIndex.index("pd"), ControlIndex.COLLECTIVE, PilotIndex.VALID) == (15, 2, 16, 6)


def test_a_column_added_to_a_layout_is_one_edit():
    class Grown(Layout):
        POSITION: slice = columns(("n", "e", "d"), "m")
        TEMPERATURE: int = column("temperature", "K")  # the new one
        CRASH: int = column("crash", "0 flying")

    assert (slice(0, 3), 3, 4, 5) == (Grown.POSITION, Grown.TEMPERATURE, Grown.CRASH, Grown.SIZE)
    assert Grown.NAMES == ("n", "e", "d", "temperature", "crash") and Grown.index("temperature") == 3
