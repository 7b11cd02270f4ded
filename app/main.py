"""The FastAPI application: `uvicorn app.main:app`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import app.curves.routes as curves
import app.jobs.routes as jobs
import app.ops.backup as backup
import app.ops.executors as executors
import app.ops.health as health
import app.page as web
import app.predict.routes as predict
import app.reports.routes as reports
import app.sweeps.routes as sweeps
import app.users.routes as users
import app.webhooks.routes as webhooks
from app.access.access import AccessMiddleware
from app.access.auth import Principals, authenticate
from app.access.permissions import refuse_undeclared
from app.curves.events import JobEvents, JobsTableEvents, StreamSlots
from app.curves.table import table_rows
from app.curves.views import JobCurves
from app.http.body_limit import BodySizeLimitMiddleware
from app.http.errors import COMMON_ERRORS, install_error_handlers, refuse_unknown_query_parameters
from app.http.security_headers import SecurityHeadersMiddleware
from app.jobs.job_plan import Prober
from app.ops.docs import install_docs
from app.ops.prometheus import install_prometheus
from app.predict.metrics import ModelCacheCollector
from app.predict.model_cache import ModelCache
from app.reports.runs import with_todays_defaults
from app.runtime.heap import freeze_long_lived, thaw
from app.runtime.loop_watch import LoopWatch
from app.runtime.pools import WorkPool
from app.settings import ApiSettings, get_settings, split_list
from app.users.quotas import PlanRate, RecentHours
from models.kinds import KINDS
from store.engine import session_factory_for
from store.jobs import FILL_BATCH, fill_training_identities
from store.migrate import upgrade
from store.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

DESCRIPTION = """
Train CIFAR-10 classifiers from the University of Amsterdam's 2020 deep-learning assignment 1.

1. `POST /jobs` with a spec (`model` plus hyperparameters; omitted fields take the assignment's defaults).
2. Poll `GET /jobs/{id}` for status and progress, `GET /jobs/{id}/metrics?since=N` for the curve.
3. `POST /jobs/{id}/cancel` to stop it.
4. `POST /predict` with images once a job has succeeded; `GET /jobs/{id}/model` downloads its weights.
5. `POST /sweeps` to search hyperparameters (trials are jobs; hopeless ones stop early), `GET /sweeps/{id}`
   for the leaderboard.
6. `POST /webhooks` to be told (signed, retried) when jobs end, alerts fire and sweeps finish.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, app.state.sessions = session_factory_for(settings)
        upgrade(engine)  # pending migrations first: the routes assume the current schema
        app.state.principals = Principals(app.state.sessions, settings.api_key, settings.principal_cache_seconds)
        app.state.recent_hours = RecentHours(settings.quota_hours_seconds)
        filled = 0  # jobs stored before their training hashes existed (once), a unit of work a batch
        while True:
            with unit_of_work(app.state.sessions) as session:
                batch = fill_training_identities(session, with_todays_defaults, FILL_BATCH)
            filled += batch
            if batch < FILL_BATCH:
                break
        if filled:
            log.info("training hashes filled in for %s jobs stored before them", filled)
        app.state.model_cache = ModelCache(settings.model_cache_mb * 1024 * 1024)
        app.state.scraped_collectors["model_cache"] = ModelCacheCollector(app.state.model_cache)
        app.state.predict_pool = WorkPool(settings.predict_concurrency, "predict")
        app.state.bulk_pool = WorkPool(settings.bulk_concurrency, "bulk")
        app.state.prober = Prober(settings.data_dir, settings.plan_probe_seconds)
        app.state.curves = JobCurves(app.state.sessions)
        app.state.events = JobEvents(app.state.curves, settings.events_interval_seconds, app.state.bulk_pool)
        app.state.stream_slots = StreamSlots(settings.events_max_streams)
        sessions = app.state.sessions
        app.state.table_events = JobsTableEvents(lambda: table_rows(sessions), settings.events_interval_seconds)
        log.info("database %s ready", engine.url.render_as_string(hide_password=True))
        freeze_long_lived()  # app.runtime.heap: out of full collections' way
        # from here on (uvicorn listens once start-up is over: the migrations above block the loop, no request)
        loop_watch = LoopWatch(settings.loop_stall_warn_seconds)
        loop_watch.start()
        yield
        await loop_watch.stop()  # stopping may block the loop a while: not a stall a request waits on
        thaw()
        await app.state.events.close()
        await app.state.table_events.close()
        await app.state.principals.close()
        await app.state.predict_pool.close()
        await app.state.bulk_pool.close()
        engine.dispose()  # last: it closes only the connections not out

    app = FastAPI(
        title="CIFAR-10 training jobs",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_undeclared)],  # a route that declares no permission is refused
    )
    app.state.settings = settings  # before startup too: dependencies read it
    app.state.plan_rate = PlanRate()
    install_error_handlers(app, set(KINDS))
    docs_scripts = install_docs(app)
    install_prometheus(app)
    web.install_web_page(app)
    checked = [Depends(refuse_unknown_query_parameters)]
    without_key = {code: answer for code, answer in COMMON_ERRORS.items() if code != 401}
    app.include_router(health.router, dependencies=checked, responses=without_key)
    protected = [Depends(authenticate), *checked]
    routers = (
        jobs.router,
        jobs.table_router,
        jobs.kinds_router,
        curves.jobs_router,
        predict.router,
        curves.router,
        sweeps.router,
        reports.router,
        webhooks.router,
        users.router,
        backup.router,
        executors.router,
    )
    for router in routers:
        app.include_router(router, dependencies=protected, responses=COMMON_ERRORS)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    # added last, so it runs first: refuse before any body is read
    app.add_middleware(
        AccessMiddleware,
        api_key_set=bool(settings.api_key),
        allowed_origins=frozenset(split_list(settings.allowed_origins)),
        allowed_hosts=frozenset(split_list(settings.allowed_hosts)),
    )
    app.add_middleware(SecurityHeadersMiddleware, script_hashes=docs_scripts)  # outermost: on every answer
    return app


app = create_app()
