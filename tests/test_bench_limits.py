"""The limits bench step measures against: the batch kernel's numpy call count, the elementwise
cost per element, and JSBSim's AH-1S where the package is installed."""

from __future__ import annotations

import numpy as np
import pytest

from heli.dynamics import FlightModel, step
from heli.initial import hover_state
from heli.state import ActuatorCommand, VehicleState
from heli.trim import solve_hover_trim
from sim.bench.limits import count_kernel_calls, elementwise_ns_per_element, jsbsim_run_us
from sim.config import load_heli


@pytest.fixture(scope="module")
def fleet():
    model = FlightModel.build(load_heli("xcell60").params)
    state = hover_state(model, solve_hover_trim(model), 200, 30.0)
    return model, state, ActuatorCommand(np.concatenate([state.servo_position, state.throttle[:, None]], axis=1))


def test_counting_a_step_leaves_its_result_alone(fleet):
    model, state, command = fleet
    before = step(model, state, command, 0.001).packed
    calls = count_kernel_calls(model, state, command, 0.001)
    assert 200 < calls < 2000  # hundreds of operations a step, the figure the floor is made of
    np.testing.assert_array_equal(step(model, state, command, 0.001).packed, before)


def test_a_fleet_near_the_ground_costs_more_calls(fleet):
    model, state, command = fleet
    low = state.packed.copy()
    low[0, 2] = -0.3  # one vehicle within reach of the ground: the contact model runs for it
    assert count_kernel_calls(model, VehicleState(low), command, 0.001) > count_kernel_calls(
        model, state, command, 0.001
    )


def test_elementwise_cost_is_a_positive_figure_and_grows_with_size_per_call():
    small, large = elementwise_ns_per_element(100, repeats=3, calls=20), elementwise_ns_per_element(10_000, 3, 20)
    assert small > 0.0 and large > 0.0
    assert small > large  # per element, the fixed cost per call weighs on small arrays


def test_jsbsim_reference_when_installed():
    pytest.importorskip("jsbsim")
    run_us = jsbsim_run_us(steps=50, repeats=3)
    assert run_us is not None and 0.1 < run_us < 10_000.0
