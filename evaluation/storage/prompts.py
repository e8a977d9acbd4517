"""The messages a model received for a stored case under a stored config: the system
prompt and every chat turn, the config's template applied as the sweep applied it
(rebuilt with the sweep's own ``build_messages``). The view's generation page and the
review page show them."""

from __future__ import annotations

from sqlmodel import Session

from evaluation.run._work import build_messages
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.models import CaseRow, ConfigRow, SuiteRow
from evaluation.storage.repository import case_input
from evaluation.suites import Case, Message, Suite


def sent_messages(session: Session, case: CaseRow, config_hash: str) -> list[dict[str, str]]:
    """The messages the model received for ``case`` under ``config_hash``; the case's
    own input where the config or suite is not stored or its template cannot be filled
    from the stored facts."""
    system, turns = case_input(session, case)
    config = session.get(ConfigRow, config_hash)
    suite = session.get(SuiteRow, case.suite)
    if config is None or suite is None:
        return ([{"role": "system", "content": system}] if system else []) + turns
    messages = tuple(Message(t["role"], t["content"]) for t in turns)
    only_user = len(messages) == 1 and messages[0].role == "user"
    as_case = Case(case.case_id, messages[0].content if only_user else messages, system=system)
    as_suite = Suite(suite.name, suite.version, suite.task_type, (), (), tuple(suite.labels or ()))
    template = PromptTemplate(config.template_name, config.template_text)
    as_config = Config(config.model, GenerationParams(), template)
    try:
        built = build_messages(as_config, as_case, as_suite)
    except (KeyError, IndexError, ValueError):  # a template the stored facts cannot fill
        built = ((Message("system", system),) if system else ()) + messages
    return [{"role": m.role, "content": m.content} for m in built]
