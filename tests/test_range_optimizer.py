"""LogBoundAdam: the bounds' optimizer takes relative steps, so no bound crosses zero whatever its size."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from edge_sr.quant.range_optimizer import LogBoundAdam


def descend(optimizer, bounds, steps):
    """`steps` updates of a loss that pushes every bound toward (and past) zero with the same gradient."""
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf.reduce_sum(bound) for bound in bounds])
        optimizer.apply_gradients(zip(tape.gradient(loss, bounds), bounds, strict=True))


def test_a_small_and_a_large_bound_move_by_the_same_fraction_and_stay_positive():
    small, large = tf.Variable([1e-3, 2e-3]), tf.Variable(1.0)  # a per-channel weight bound, an activation bound
    descend(LogBoundAdam(1e-2), [small, large], 100)
    ratios = np.append(small.numpy() / [1e-3, 2e-3], large.numpy())
    assert np.all(ratios > 0)
    assert np.all(ratios < 0.5)  # each moved: about exp(−100 · 0.01) = 0.37 of where it started
    assert ratios.max() / ratios.min() == pytest.approx(1.0, abs=1e-3)


def test_plain_adam_would_drive_the_small_bound_through_zero():
    """What LogBoundAdam is for: at 2DQuant's lr 1e-2, Adam's steps of about the learning rate cross 1e-3 at once."""
    small = tf.Variable(1e-3)
    descend(keras.optimizers.Adam(1e-2), [small], 2)
    assert small.numpy() < 0


def test_a_bound_at_zero_stays_there_and_signs_hold():
    lower, upper = tf.Variable(0.0), tf.Variable(0.5)
    descend(LogBoundAdam(1e-1), [lower, upper], 200)  # lower pushed below zero, upper toward it
    assert lower.numpy() == 0.0  # a ReLU output's lower bound
    assert 0 < upper.numpy() < 0.05  # relative steps of up to 10 %: it nears zero and never reaches it
