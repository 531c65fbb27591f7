"""Every setting in the README's configuration table has a test that changes it and sees the
effect: this maps each to that test and fails for a setting without one (a new row needs a
test and a line here), for a test that does not exist, and for a test file that never names
the setting (or the pattern given, where a test builds the names)."""

from __future__ import annotations

import ast
import re

from tests.support import ROOT

# setting -> (test node id, text the test file must contain; None: the setting's own name)
EFFECT_TESTS: dict[str, tuple[str, str | None]] = {
    "REE_DB_POOL_SIZE": (
        "tests/integration/test_db_pool_size.py::test_a_service_keeps_no_more_connections_than_its_pool_size",
        None,
    ),
    "REE_RATE_LIMIT_SCOPE": (
        "tests/integration/test_shared_rate_limit.py::test_counted_per_process_each_replica_gives_the_limit",
        None,
    ),
    "REE_LOG_LEVEL": (
        "tests/integration/test_tracing.py::test_the_logs_are_json_lines_carrying_the_event_case_and_trace_ids",
        None,
    ),
    "REE_LOG_FORMAT": (
        "tests/unit/test_logs.py::test_text_lines_are_plain_and_exceptions_stay_in_the_json_line",
        None,
    ),
    "OTEL_EXPORTER_OTLP_ENDPOINT": (
        "tests/integration/test_tracing.py::test_one_application_is_one_trace_from_its_submission_to_its_webhook",
        None,
    ),
    "REE_WEBHOOK_SECRETS_KEY": (
        "tests/integration/test_notify_sealed_secrets.py::test_secrets_are_sealed_in_the_database_and_survive_a_key_rotation",
        None,
    ),
    "REE_WEBHOOK_SECRETS_OLD_KEYS": (
        "tests/integration/test_notify_sealed_secrets.py::test_secrets_are_sealed_in_the_database_and_survive_a_key_rotation",
        None,
    ),
    "REE_SESSION_IDLE_MINUTES": (
        "tests/integration/accounts/test_accounts.py::test_a_session_expires_when_idle_and_after_its_absolute_lifetime",
        None,
    ),
    "REE_SESSION_MAX_HOURS": (
        "tests/integration/accounts/test_accounts.py::test_a_session_expires_when_idle_and_after_its_absolute_lifetime",
        None,
    ),
    "REE_CONTROLLED_GOODS_FILE": (
        "tests/integration/test_intake_screening.py::test_goods_not_controlled_on_the_day_are_422_and_nothing_is_stored_or_sent",
        None,
    ),
    "REE_SMTP_URL": (
        "tests/integration/accounts/test_people_cli.py::test_a_company_invitation_is_e_mailed_where_smtp_is_set_and_people_are_audited",
        None,
    ),
    "REE_DIGEST_HOUR": (
        "tests/integration/test_digest.py::test_the_digest_hour_decides_when_a_replicas_tick_sends_it",
        None,
    ),
    "REE_DIGEST_CHECK_SECONDS": (
        "tests/integration/test_digest.py::test_each_opted_in_official_receives_their_sides_digest_once_in_their_language",
        None,
    ),
    "REE_DIGEST_DAYS": (
        "tests/integration/test_digest.py::test_a_refused_digest_is_logged_and_sent_on_the_next_run_and_the_horizon_is_a_setting",
        None,
    ),
    "REE_SMTP_FROM": (
        "tests/integration/accounts/test_people_cli.py::test_a_company_invitation_is_e_mailed_where_smtp_is_set_and_people_are_audited",
        None,
    ),
    "REE_PORTAL_URL": (
        "tests/integration/accounts/test_people_cli.py::test_a_company_invitation_is_e_mailed_where_smtp_is_set_and_people_are_audited",
        None,
    ),
    "REE_CONSOLE_URL": (
        "tests/integration/accounts/test_people_cli.py::test_an_invitation_link_leads_to_the_console_the_settings_name",
        None,
    ),
    "REDIS_URL": (
        "tests/integration/test_redis_users.py::test_a_rediss_url_speaks_tls_verified_against_the_ca_file",
        None,
    ),
    "REE_REDIS_USERNAME": (
        "tests/unit/test_redis_acl.py::test_the_redis_settings_become_connection_options",
        None,
    ),
    "REE_REDIS_PASSWORD": (
        "tests/security/test_redis_acl.py::test_a_service_refuses_to_start_in_production_without_redis_authentication",
        None,
    ),
    "REE_REDIS_CA_FILE": (
        "tests/integration/test_redis_users.py::test_a_rediss_url_speaks_tls_verified_against_the_ca_file",
        None,
    ),
    "REE_REDIS_ADMIN_PASSWORD": (
        "tests/integration/test_redis_users.py::test_the_operator_command_sets_the_users_up_on_a_running_redis",
        None,
    ),
    # The per-user passwords are given in one loop over the users.
    **{
        f"REE_REDIS_{user}_PASSWORD": (
            "tests/integration/test_redis_users.py::test_the_operator_command_sets_the_users_up_on_a_running_redis",
            'f"REE_REDIS_{role.upper()}_PASSWORD"',
        )
        for user in ("INTAKE", "REVIEW", "NOTIFY", "OPERATOR")
    },
    "DATABASE_URL": (
        "tests/faults/test_database_faults.py::test_a_service_started_before_its_database_waits_and_then_serves",
        None,
    ),
    "REE_DATA_DIR": (
        "tests/integration/test_operator_run.py::test_run_serves_each_service_on_the_ports_of_the_settings_and_simulate_finds_them",
        None,
    ),
    "REE_DOCUMENT_DIR": (
        "tests/integration/test_review_documents.py::test_intake_writes_where_ree_document_dir_says_and_review_reads_it_from_there",
        None,
    ),
    "REE_TOKEN_SECRET": (
        "tests/security/test_secrets.py::test_a_service_refuses_to_start_in_production_without_a_real_token_secret",
        None,
    ),
    "REE_AUDIT_KEY": (
        "tests/unit/review/test_review_audit_keys.py::test_production_takes_the_configured_keys",
        None,
    ),
    "REE_AUDIT_SIGNING_KEY": (
        "tests/unit/review/test_review_audit_keys.py::test_production_takes_the_configured_keys",
        None,
    ),
    "REE_AUDIT_CHECKPOINT_SECONDS": (
        "tests/integration/test_review_audit_chain.py::test_review_issues_checkpoints_by_itself_and_announces_them_to_both_sides",
        None,
    ),
    "REE_PRIORITY_RESCORE_SECONDS": (
        "tests/integration/test_live_priority.py::test_review_scores_open_cases_again_by_itself_at_its_interval",
        None,
    ),
    "REE_ENV": (
        "tests/security/test_secrets.py::test_a_service_refuses_to_start_in_production_without_a_real_token_secret",
        None,
    ),
    **{
        port: (
            "tests/integration/test_operator_run.py::test_run_serves_each_service_on_the_ports_of_the_settings_and_simulate_finds_them",
            None,
        )
        for port in ("INTAKE_PORT", "REVIEW_PORT", "NOTIFY_PORT")
    },
    "REE_MAX_BODY_BYTES": (
        "tests/security/test_hostile_input.py::test_oversized_uploads_and_bodies_are_refused_with_413",
        None,
    ),
    "REE_MAX_UPLOAD_BYTES": (
        "tests/integration/test_intake_api.py::test_oversize_upload_is_413",
        None,
    ),
    "REE_UPLOAD_QUOTA_BYTES": (
        "tests/integration/test_intake_input.py::test_a_companys_documents_are_limited_by_its_quota",
        None,
    ),
    "REE_MAX_DOCUMENTS_PER_APPLICATION": (
        "tests/integration/test_intake_input.py::test_documents_per_application_are_limited_in_number_and_bytes",
        None,
    ),
    "REE_MAX_APPLICATION_DOCUMENT_BYTES": (
        "tests/integration/test_intake_input.py::test_documents_per_application_are_limited_in_number_and_bytes",
        None,
    ),
    "REE_NOTIFY_URL": (
        "tests/integration/test_settings_effects.py::test_the_portal_reaches_notify_at_the_notify_url",
        None,
    ),
    "REE_NOTIFY_TIMEOUT_SECONDS": (
        "tests/integration/test_settings_effects.py::test_the_portal_waits_for_notify_no_longer_than_its_timeout",
        None,
    ),
    "REE_REFERENCE_SECRET": (
        "tests/integration/test_settings_effects.py::test_the_reference_secret_keys_the_references",
        None,
    ),
    "REE_HEADER_TIMEOUT_SECONDS": (
        "tests/integration/test_intake_input.py::test_a_request_head_that_does_not_arrive_in_time_is_closed",
        None,
    ),
    "REE_MAX_HEAD_BYTES": (
        "tests/integration/test_settings_effects.py::test_a_head_beyond_max_head_bytes_is_refused",
        None,
    ),
    "REE_KEEP_ALIVE_SECONDS": (
        "tests/integration/test_settings_effects.py::test_an_idle_kept_alive_connection_is_closed_after_keep_alive_seconds",
        None,
    ),
    "REE_LIMIT_CONCURRENCY": (
        "tests/integration/test_settings_effects.py::test_requests_beyond_limit_concurrency_are_answered_503",
        None,
    ),
    "REE_RATE_LIMIT_PER_MINUTE": (
        "tests/security/test_hostile_input.py::test_the_rate_limit_is_per_credential_and_answers_429_with_retry_after",
        None,
    ),
    "REE_MAX_DELIVERIES": (
        "tests/faults/test_faults.py::test_a_dead_letter_is_replayed_after_its_cause_is_fixed",
        None,
    ),
    "REE_CLAIM_IDLE_MS": (
        "tests/faults/test_faults.py::test_review_killed_mid_batch_opens_each_case_exactly_once",
        None,
    ),
    "REE_STREAM_RETENTION_SECONDS": (
        "tests/integration/test_stream_retention.py::test_the_services_keep_their_streams_bounded",
        None,
    ),
    "REE_STREAM_TRIM_SECONDS": (
        "tests/integration/test_stream_retention.py::test_the_services_keep_their_streams_bounded",
        None,
    ),
    "REE_RELAY_LOCK_MS": (
        "tests/integration/test_settings_effects.py::test_the_relay_lock_prune_batch_and_upkeep_settings_reach_the_runtime",
        None,
    ),
    "REE_UPKEEP_SECONDS": (
        "tests/integration/test_settings_effects.py::test_upkeep_seconds_sets_how_often_a_service_vacuums",
        None,
    ),
    "REE_PRUNE_SECONDS": (
        "tests/integration/test_pruning.py::test_the_services_prune_their_own_tables_on_the_settings_given",
        None,
    ),
    "REE_PRUNE_BATCH": (
        "tests/integration/test_settings_effects.py::test_the_relay_lock_prune_batch_and_upkeep_settings_reach_the_runtime",
        None,
    ),
    "REE_OUTBOX_REPLAY_HOURS": (
        "tests/integration/test_pruning.py::test_the_services_prune_their_own_tables_on_the_settings_given",
        None,
    ),
    "REE_PROCESSED_EVENTS_HOURS": (
        "tests/integration/test_pruning.py::test_the_services_prune_their_own_tables_on_the_settings_given",
        None,
    ),
    "REE_DELIVERY_LOG_DAYS": (
        "tests/integration/test_settings_effects.py::test_the_delivery_log_days_setting_prunes_through_notifys_wiring",
        None,
    ),
    "REE_SCHEMA_PREFIX": (
        "tests/integration/test_pruning.py::test_the_services_prune_their_own_tables_on_the_settings_given",
        None,
    ),
    # Infra.env gives every deployment its own prefix; the test reads its prefixed stream.
    "REE_STREAM_PREFIX": (
        "tests/integration/test_nothing_lost.py::test_applications_accepted_while_redis_is_down_reach_the_stream_once_it_is_back",
        'own.stream("intake.events")',
    ),
}


def readme_settings(readme: str) -> list[str]:
    """The variables named in the first column of the README's configuration table."""
    section = readme[readme.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1])
    return names


def test_the_readme_table_is_read() -> None:
    table = "## Configuration\n\n| variable | default |\n|---|---|\n| `A_B`, `C` | 1 |\n\n## Next\n"
    assert readme_settings(table) == ["A_B", "C"]


def test_every_setting_in_the_readme_has_a_test_that_sees_its_effect() -> None:
    settings = readme_settings((ROOT / "README.md").read_text())
    assert len(settings) > 40, "the table was found"
    missing = [name for name in settings if name not in EFFECT_TESTS]
    assert not missing, f"settings without an effect test (add one and map it here): {missing}"
    stale = [name for name in EFFECT_TESTS if name not in settings]
    assert not stale, f"mapped but no longer in the README: {stale}"


def test_every_mapped_test_exists_and_names_its_setting() -> None:
    problems = []
    for name, (node, needle) in EFFECT_TESTS.items():
        path, _, function = node.partition("::")
        source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
        defined = {
            n.name
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if function not in defined:
            problems.append(f"{name}: no test {node}")
        elif (needle or name) not in source:
            problems.append(f"{name}: {path} never names {needle or name}")
    assert not problems, "\n".join(problems)
