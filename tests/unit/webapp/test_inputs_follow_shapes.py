"""The deprecated synchronous endpoints take back what the pipeline once produced (an
analysis, audiences, scenarios): their request schemas add input limits, and must name
exactly the fields of the pipeline's own shapes, which are the one definition."""

from __future__ import annotations

import pytest
from marshmallow import Schema

from queue_jobs.services.catalog import RESULT_SCHEMAS
from webapp.schemas import inputs


@pytest.mark.parametrize(("request_schema", "shape_name"), [
    (inputs.Analysis, "BusinessAnalysis"),
    (inputs.Audience, "ScenarioAudience"),
    (inputs.Scenario, "AnalysisScenario"),
])
def test_request_schema_names_the_shapes_fields(request_schema: type[Schema],
                                                shape_name: str) -> None:
    assert set(request_schema().fields) == set(RESULT_SCHEMAS[shape_name]["properties"])


def test_business_info_is_the_analysis_without_required_fields() -> None:
    info, analysis = inputs.BusinessInfo(), inputs.Analysis()
    assert set(info.fields) == set(analysis.fields)
    assert not any(field.required for field in info.fields.values())
