"""The benchmark suite behind ``tools/bench`` (results in BENCHMARKS.md).

* :mod:`benchlib.measure`: one measured side (a program, or a library call forked from
  a warm server process), alternation of sides, medians, peak memory.
* :mod:`benchlib.server` and :mod:`benchlib.jobs`: the library calls, run in a child.
* :mod:`benchlib.systems`: the generated systems and what is done to them between runs;
  :mod:`benchlib.synthetic`: two fingerprints of a million members for ``ssm compare``.
* :mod:`benchlib.sections`: one function per table of BENCHMARKS.md.
* :mod:`benchlib.machine` and :mod:`benchlib.report`: the header and the Markdown.
* :mod:`benchlib.context`: the plans (full, ``--quick``, ``--tiny``) and what every
  section is given; :mod:`benchlib.main`: the command line.
"""
