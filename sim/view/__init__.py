"""The pygame view: its own process, fed snapshots through shared memory, keys back through a pipe.

pygame is imported only inside this package, and only by the view process (``sim.view.app``);
the simulator side (``sim.view.link``) and the snapshot format (``sim.view.snapshot``) do not
import it.
"""
