"""The CPU gold-reward world: tasks with a computable gold reward, pi_0, r_0 and measurements.

The package itself imports nothing heavy, so ``mt.config`` can take the world's config section from
``mt.world.config``; import the parts from their modules (``mt.world.build``, ``mt.world.measure``).
"""
