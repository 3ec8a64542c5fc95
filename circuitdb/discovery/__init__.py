"""Discovery jobs: run a transformer on a task, find its circuit per threshold, measure it, hand Runs to ingest.

The only part of circuitdb that imports torch and TransformerLens.
"""
