"""The optimizer that learns quantizer bounds (ranges, WCC's gamma): Adam on the logarithm of each bound's size.

Plain Adam moves every variable by about its learning rate per step, whatever the variable's size: at 2DQuant's
lr 1e-2 a per-channel weight bound of 1e-2 crosses zero within a few steps (the range collapses), while an
activation bound of 100 barely moves. Learning θ = log|b| instead (b = ±exp θ, sign fixed) makes every step a
relative one, b ← b · exp(−Δθ): a bound of 1e-3 and one of 1 move by comparable fractions of themselves, and no
bound can change sign, so a range that holds 0 keeps holding it and never becomes empty. A bound at exactly 0
(a ReLU output's lower bound) stays there.
"""

import tensorflow as tf
import tf_keras as keras


class LogBoundAdam(keras.optimizers.Adam):
    """Adam whose moments and step are those of θ = log|variable|: ∂L/∂θ = b · ∂L/∂b, then b ← b · exp(−step)."""

    # The gradients in θ are the bounds' gradients times the bounds, often far below Adam's default 1e-7 for the
    # small per-channel weight bounds; an epsilon that large would hold exactly those bounds still.
    def __init__(self, learning_rate, epsilon=1e-12, **kwargs):
        super().__init__(learning_rate, epsilon=epsilon, **kwargs)

    def update_step(self, gradient, variable):
        gradient = tf.convert_to_tensor(gradient) * variable
        lr = tf.cast(self.learning_rate, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1_power = tf.pow(tf.cast(self.beta_1, variable.dtype), step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, variable.dtype), step)
        index = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[index], self._velocities[index]
        m.assign_add((gradient - m) * (1 - self.beta_1))
        v.assign_add((tf.square(gradient) - v) * (1 - self.beta_2))
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        variable.assign(variable * tf.exp(-alpha * m / (tf.sqrt(v) + self.epsilon)))
