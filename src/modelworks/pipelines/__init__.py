"""Pipelines: steps that build a DAG, run on an executor, cached, with lineage.

``@step`` and ``@pipeline`` decorate plain functions; ``ws.run_pipeline(pipeline, ...)``
runs one and returns a :class:`PipelineRun`. See docs/pipelines.md.
"""

from __future__ import annotations

from .execute import log_metric
from .records import PipelineFailed, PipelineRun, StepRun
from .steps import Pipeline, Step, StepOutput, pipeline, step

__all__ = ["Pipeline", "PipelineFailed", "PipelineRun", "Step", "StepOutput", "StepRun",
           "log_metric", "pipeline", "step"]
