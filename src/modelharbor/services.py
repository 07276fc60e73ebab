"""The Services container: every core service wired to one database, blob store and signer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelharbor.compute.environments import LocalEnvironmentBuilder
from modelharbor.core.access_requests import AccessRequestService
from modelharbor.core.catalogue import CatalogueService, ImportService, ModelJobService
from modelharbor.core.compute_providers import LOCAL_TYPE, ComputeProvider, ComputeProviderService
from modelharbor.core.data_sources import DataSourceService
from modelharbor.core.dataset_uploads import DatasetUploads
from modelharbor.core.datasets import DatasetService
from modelharbor.core.directory import DirectoryService
from modelharbor.core.files import FileService, LinkSigner, UploadLimits, UploadService
from modelharbor.core.git_credentials import GitCredentialService
from modelharbor.core.hardware_tiers import HardwareTierService
from modelharbor.core.identity import IdentityService
from modelharbor.core.project_copy import ProjectCopyService
from modelharbor.core.project_files import ProjectFileService
from modelharbor.core.project_goals import ProjectGoalService
from modelharbor.core.project_repos import ProjectRepoService
from modelharbor.core.project_settings import ProjectSettingsService
from modelharbor.core.projects import ProjectService
from modelharbor.core.registry import ModelFileService, RegistryService, ReviewService, RunRegistration
from modelharbor.core.serving import ServingService
from modelharbor.core.serving.pipelines import PipelineService
from modelharbor.core.tasks import TaskService
from modelharbor.core.teams import TeamService
from modelharbor.core.tokens import TokenService
from modelharbor.core.tracking import ArtifactService, TrackingService
from modelharbor.core.transfer import TransferService
from modelharbor.core.users import UserAdminService
from modelharbor.db.engine import Database
from modelharbor.settings import Settings
from modelharbor.storage import BlobStore, open_blob_store


@dataclass
class Services:
    settings: Settings
    db: Database
    store: BlobStore
    signer: LinkSigner
    identity: IdentityService
    files: FileService
    uploads: UploadService
    tasks: TaskService
    imports: ImportService
    catalogue: CatalogueService
    tokens: TokenService
    tracking: TrackingService
    artifacts: ArtifactService
    registry: RegistryService
    projects: ProjectService
    hardware_tiers: HardwareTierService
    compute_providers: ComputeProviderService
    reviews: ReviewService
    run_registration: RunRegistration
    model_files: ModelFileService
    serving: ServingService
    pipelines: PipelineService
    transfer: TransferService
    model_jobs: ModelJobService
    users: UserAdminService
    project_files: ProjectFileService
    sandbox: Any = None  # compute.sandbox.Sandbox: how user code is isolated (its describe() is logged at start)
    directory: DirectoryService = None  # type: ignore[assignment]  # set by build_services
    git_credentials: GitCredentialService = None  # type: ignore[assignment]
    teams: TeamService = None  # type: ignore[assignment]
    project_goals: ProjectGoalService = None  # type: ignore[assignment]
    project_repos: ProjectRepoService = None  # type: ignore[assignment]
    access_requests: AccessRequestService = None  # type: ignore[assignment]
    project_copy: ProjectCopyService = None  # type: ignore[assignment]
    project_settings: ProjectSettingsService = None  # type: ignore[assignment]  # listings, archive, tags, status
    data_sources: DataSourceService = None  # type: ignore[assignment]
    datasets: DatasetService = None  # type: ignore[assignment]  # Domino datasets (core/datasets.py)
    dataset_uploads: DatasetUploads = None  # type: ignore[assignment]  # resumable dataset uploads

    def close(self) -> None:
        self.serving.shutdown()
        self.db.dispose()


def workload_sandbox(settings: Settings, home_tenant: Callable[[], str | None] | None = None):
    """The sandbox user code starts in, from the settings (docs/security.md)."""
    from modelharbor.compute.base import Limits
    from modelharbor.compute.sandbox import Sandbox

    return Sandbox(
        settings.sandbox,
        network=settings.sandbox_network,
        single_tenant=settings.single_tenant,
        limits=Limits(
            memory=settings.workload_memory or None,
            cpus=settings.workload_cpus or None,
            processes=settings.workload_processes or None,
            file_size=settings.workload_file_size or None,
        ),
        uid_base=settings.workload_uid_base,
        private=(settings.data_dir.resolve(),),
        home_tenant=home_tenant,
    )


def local_provider() -> ComputeProvider:
    """The local executor as a compute provider (core/compute_providers.py): no GPUs to give."""
    import os

    return ComputeProvider(
        "local", "Local executor", LOCAL_TYPE, {"executor": "local", "cpus": os.cpu_count() or 1, "gpus": 0}
    )


def _local_executor(sandbox):
    def make():
        from modelharbor.compute.local import LocalExecutor

        return LocalExecutor(sandbox=sandbox)

    return make


def build_services(settings: Settings, *, db: Database | None = None, store: BlobStore | None = None) -> Services:
    db = db or Database(settings.resolved_database_url())
    store = store or open_blob_store(
        settings.resolved_blob_url(),
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=settings.s3_secret_access_key,
        s3_allow_http=settings.s3_allow_http,
    )
    signer = LinkSigner(settings.resolved_secret_key())
    identity = IdentityService(db)
    files = FileService(
        db,
        store,
        signer,
        max_single_upload=settings.max_single_upload_size,
        pending_grace=settings.pending_object_grace,
    )
    uploads = UploadService(
        db,
        store,
        files,
        UploadLimits(
            session_ttl=settings.upload_session_ttl,
            max_upload_size=settings.max_upload_size,
            max_chunk_size=settings.max_chunk_size,
            max_chunks=settings.max_chunks,
        ),
    )
    tasks = TaskService(db)
    catalogue = CatalogueService(db, files, max_data_size=settings.max_upload_size)
    tokens = TokenService(
        identity,
        settings.resolved_secret_key(),
        access_ttl=settings.jwt_access_ttl,
        refresh_ttl=settings.jwt_refresh_ttl,
    )
    tracking = TrackingService(db)
    projects = ProjectService(db)
    hardware_tiers = HardwareTierService(db)
    sandbox = workload_sandbox(settings, identity.home_org_id)
    serving = ServingService(
        db,
        files,
        tasks,
        projects,
        executor=_local_executor(sandbox),
        builder=LocalEnvironmentBuilder(
            settings.data_dir.resolve() / "environments", timeout=float(settings.build_timeout)
        ),
        secret_key=settings.resolved_secret_key(),
        work_dir=settings.data_dir.resolve() / "serving",
        max_package_size=settings.max_package_size,
        hardware_tiers=hardware_tiers,
    )
    registry = RegistryService(
        db,
        logged_model_run=lambda principal, model_id: tracking.get_logged_model(principal, model_id).source_run_id,
    )
    imports = ImportService(
        db, files, uploads, tasks, max_entries=settings.max_archive_entries, registry=registry, identity=identity
    )
    return Services(
        settings,
        db,
        store,
        signer,
        identity,
        files,
        uploads,
        tasks,
        imports,
        catalogue,
        tokens,
        tracking=tracking,
        artifacts=ArtifactService(db, store, files, uploads, identity, signer),
        registry=registry,
        projects=projects,
        hardware_tiers=hardware_tiers,
        compute_providers=ComputeProviderService(hardware_tiers, (local_provider(),)),
        reviews=ReviewService(db, registry),
        run_registration=RunRegistration(db, tracking, registry),
        model_files=ModelFileService(db, files, registry, tracking),
        serving=serving,
        pipelines=PipelineService(db, serving, identity),
        transfer=TransferService.from_settings(settings, db, files, tasks, identity, serving),
        model_jobs=ModelJobService(db, imports, serving, projects, tasks, identity, files),
        users=UserAdminService(identity),
        project_files=ProjectFileService(db, files, projects, max_size=settings.max_upload_size),
        sandbox=sandbox,
        directory=DirectoryService(db),
        git_credentials=GitCredentialService(db, settings.resolved_secret_key()),
        teams=TeamService(db),
        project_goals=ProjectGoalService(db, projects),
        project_repos=ProjectRepoService(db, projects),
        access_requests=AccessRequestService(db, projects),
        project_copy=ProjectCopyService(db, projects, files),
        project_settings=ProjectSettingsService(db, projects),
        data_sources=DataSourceService(db, settings.resolved_secret_key()),
        datasets=DatasetService(db, files, projects, max_size=settings.max_upload_size),
        dataset_uploads=DatasetUploads(db, uploads, session_ttl=settings.upload_session_ttl),
    )
