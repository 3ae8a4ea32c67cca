import threading

import pytest
from django.db import close_old_connections, connection

from prompts.errors import PromptNotFound
from prompts.models import PromptVersion
from prompts.services import prompt_template_create, prompt_version_create, prompt_version_record_use


def test_statistics_are_recorded(version):
    prompt_version_record_use(version_id=version.pk, success=True, tokens_in=100, tokens_out=20, latency_ms=300)
    prompt_version_record_use(version_id=version.pk, success=False, tokens_in=200, tokens_out=40, latency_ms=500)
    version.refresh_from_db()
    assert (version.uses, version.successes, version.failures) == (2, 1, 1)
    assert version.used and version.success_rate == 0.5
    assert (version.mean_tokens_in, version.mean_tokens_out, version.mean_latency_ms) == (150, 30, 400)


def test_unused_version_has_no_rates(version):
    assert not version.used and version.success_rate is None and version.mean_latency_ms is None


def test_record_use_rejects_unknown_versions_and_negative_numbers(version):
    with pytest.raises(PromptNotFound):
        prompt_version_record_use(version_id=version.pk + 999, success=True, tokens_in=1, tokens_out=1,
                                  latency_ms=1)
    with pytest.raises(ValueError):
        prompt_version_record_use(version_id=version.pk, success=True, tokens_in=-1, tokens_out=1, latency_ms=1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_lose_no_count():
    template = prompt_template_create(slug="busy", required_variables=[])
    version = prompt_version_create(template=template, body="busy", activate=True)
    threads_count, per_thread = 8, 50
    barrier = threading.Barrier(threads_count)
    errors = []

    def hammer(index: int) -> None:
        # Each thread has its own PostgreSQL connection, so the increments really race.
        try:
            barrier.wait()
            for call in range(per_thread):
                prompt_version_record_use(version_id=version.pk, success=(index + call) % 3 != 0, tokens_in=7,
                                          tokens_out=3, latency_ms=11)
        except Exception as error:  # reported below; a thread's exception would be lost otherwise
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()
    assert errors == []
    version = PromptVersion.objects.get(pk=version.pk)
    total = threads_count * per_thread
    expected_failures = sum((index + call) % 3 == 0 for index in range(threads_count) for call in range(per_thread))
    assert version.uses == total
    assert (version.successes, version.failures) == (total - expected_failures, expected_failures)
    assert (version.tokens_in_total, version.tokens_out_total, version.latency_ms_total) == (7 * total, 3 * total,
                                                                                              11 * total)
