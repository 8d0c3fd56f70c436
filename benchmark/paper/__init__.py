"""The DIFFUMA paper's published numbers as data (`diffuma_paper.csv`, read by `benchmark.paper.numbers`)."""
