"""``heli-sim sweep``: many headless flights, faster than real time, judged by numbers.

A sweep file names what to vary (a grid, seeded random draws, or both) over a base flight; each
flight is one helicopter (``plan``).  Flights that differ only in controller gains fly together
as one batch, each vehicle with its own gains, through the same numpy kernels as a fleet
(``batch``); each flight is measured as it flies (``metrics``).  Batches run in local worker
processes or on a Ray cluster (``backends``); the rows, one per flight and in the sweep's order,
are the same on either, and go to CSV or Parquet with a short table on the terminal (``output``).
"""
