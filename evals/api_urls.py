"""Routes of this app under /api/v1/ (see agentos.api.slash_optional).

``tasks/<id>/feedback`` lives here, not in tasks.api_urls: feedback is this app's model.
"""

from agentos.api import slash_optional
from evals import api_views as v

DATASET = r"datasets/(?P<dataset_id>[0-9]+)"
RUN = r"evals/runs/(?P<run_id>[0-9]+)"
TASK = r"tasks/(?P<task_id>[^/]+)"

urlpatterns = [
    slash_optional(r"datasets", v.DatasetListView.as_view(), name="dataset-list"),
    slash_optional(DATASET, v.DatasetDetailView.as_view(), name="dataset-detail"),
    slash_optional(rf"{DATASET}/items", v.DatasetItemListView.as_view(), name="dataset-items"),
    slash_optional(rf"{DATASET}/items/(?P<item_id>[0-9]+)", v.DatasetItemDetailView.as_view(),
                   name="dataset-item"),
    slash_optional(r"evals/runs", v.EvalRunListView.as_view(), name="eval-run-list"),
    slash_optional(RUN, v.EvalRunDetailView.as_view(), name="eval-run-detail"),
    slash_optional(rf"{RUN}/results", v.EvalRunResultsView.as_view(), name="eval-run-results"),
    slash_optional(r"evals/compare", v.EvalCompareView.as_view(), name="eval-compare"),
    slash_optional(rf"{TASK}/feedback", v.TaskFeedbackView.as_view(), name="task-feedback"),
    slash_optional(rf"{TASK}/feedback/dataset", v.TaskToDatasetView.as_view(), name="task-feedback-dataset"),
]
