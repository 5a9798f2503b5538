"""The admin actions: start or abort a rollout of the served environment, roll it back, stop its experiment.

Each acts on the environment whose ``model_dir`` the service serves, through the same API as
`efimero rollout`, `efimero rollback` and `efimero experiment stop`, so the locks, records and checks are theirs. The
service then follows the registry's new pointer or split like any other change.
"""

from __future__ import annotations

from efimero.errors import DeployError, ExperimentError
from efimero.registry import Registry
from efimero.serve.dashboard.schemas import DeploymentView, ExperimentView, RolloutClock, RolloutView, StartRollout
from efimero.serve.dashboard.sources import DashboardSources
from efimero.serve.dashboard.views import Public, deployment_view, experiment_view, rollout_view

LOCK_WAIT_S = 10.0
"""How long an action waits for another deployment of the target before answering 409 (the CLI waits 60 s)."""


class NoExperimentError(ExperimentError):
    """Nothing to stop: the served environment runs no experiment (404, where other refusals are 409)."""


def start_rollout(sources: DashboardSources, request: StartRollout, *, public: Public) -> RolloutView:
    """Stage a version of the retraining registry and give it the first stage's share of the served environment.

    Raises:
        NotAnEnvironmentError: the served registry is no environment.
        DeployError: a rollout runs already, or staging failed (the target is then as before).
        VersionNotFoundError: the retraining registry has no such version.
        pydantic.ValidationError: ``stages`` are not increasing shares ending at 1.
    """
    from efimero.deploy.rollout import start
    from efimero.deploy.rollout_checks import clock_now
    from efimero.deploy.rollout_state import RolloutPlan

    plan = RolloutPlan.model_validate(request.model_dump(include={"stages", "hold_minutes"}, exclude_none=True))
    target = sources.environment()
    state = start(sources.retraining.retraining.models_dir, target, version=request.version,
                  now=clock_now(request.clock, sources.db_url), plan=plan, lock_wait_s=LOCK_WAIT_S,
                  environments=sources.environments, clock=request.clock, db_url=sources.db_url)
    return rollout_view(state, public)


def abort_rollout(sources: DashboardSources, reason: str, *, public: Public) -> RolloutView:
    """Send every visitor of the served environment back to its live version.

    Raises:
        NotAnEnvironmentError: the served registry is no environment.
        DeployError: no rollout is running.
    """
    from efimero.deploy.rollout import abort, status
    from efimero.deploy.rollout_checks import clock_now

    target = sources.environment()
    state = status(target, environments=sources.environments)
    state = abort(target, now=clock_now(state.clock, state.db_url), reason=reason, lock_wait_s=LOCK_WAIT_S,
                  environments=sources.environments)
    return rollout_view(state, public)


def rollback(sources: DashboardSources, to: str | None, *, public: Public) -> DeploymentView:
    """Point the served environment back at its previous version (or ``to``), verified and smoke-tested.

    Raises:
        NotAnEnvironmentError: the served registry is no environment.
        DeployError: rollback is disabled for it, a rollout runs, or the rollback failed (the
            target then serves what it served before).
    """
    from efimero.deploy import rollback as roll_back

    record = roll_back(sources.environment(), to=to, lock_wait_s=LOCK_WAIT_S, environments=sources.environments)
    if record.status != "success":
        raise DeployError(f"the rollback to {record.version} failed and was undone: {record.error}")
    return deployment_view(record.to_dict(), public)


def stop_experiment(sources: DashboardSources, reason: str, clock: RolloutClock, *, public: Public) -> ExperimentView:
    """End the served environment's experiment: every visitor back on the control, the final readout kept.

    Raises:
        NotAnEnvironmentError: the served registry is no environment.
        NoExperimentError: no experiment is running there.
    """
    from efimero.deploy.rollout_checks import clock_now
    from efimero.experiment.live import read_state, stop
    from efimero.store import open_engine

    sources.environment()  # the served registry must be an environment, as for every action
    registry = Registry(sources.served)
    state = read_state(registry.root)
    if state is None or state.status != "running":
        raise NoExperimentError(f"no experiment is running on {registry.root.name}: there is nothing to stop.")
    engine = open_engine(state.db_url, create=False)
    try:
        stopped = stop(registry, engine, now=clock_now(clock, state.db_url), reason=reason,
                       rules=sources.retraining.retraining.monitoring)
    finally:
        engine.dispose()
    return experiment_view(stopped, public)
