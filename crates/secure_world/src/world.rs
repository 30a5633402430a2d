//! The secure world: one entry point ([`SecureWorld::smc`]) through which
//! the normal world opens sessions with TAs, invokes them, and lends and
//! reclaims protected memory.
//!
//! The normal world never touches secure state directly: sessions, lent
//! objects, keys and the PIN live here and are reached only by messages.
//! Methods other than `smc` are the secure side's own controls (the secure
//! input device, the encoder key slot, diagnostics), not part of the ABI.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use teeheap_sync::Recover;

use teeheap_platform::fault::{Fault, Point};
use teeheap_platform::{PAGE_SIZE, PhysRange, Platform, UseCase};
use teeheap_uapi::tee::gp::TEEC_ORIGIN_TEE;

use crate::abi::{
    ABI_VERSION, Capabilities, Command, FastCall, Msg, MsgParam, ParamDir, ProtmemAttr, SecureMonitor, Smc, SmcResult,
    Uuid,
};
use crate::config::{DynamicProtmem, Key128, ProtmemKind, ProtmemMode, SecureConfig};
use crate::encoder_key::{self, KeySlot};
use crate::error::{TeeError, TeeResult};
use crate::input::SecureInput;
use crate::memref::{MemKind, TaMemory};
use crate::params;
use crate::protmem::{LentInfo, Protmem, ProtmemStats, ScrubObserver};
use crate::rpc::SupplicantRpc;
use crate::session::{Session, Sessions};
use crate::ta::content_decrypt::{self, ContentDecrypt};
use crate::ta::host::{self, HostInstances, HostTaConfig};
use crate::ta::invoke_tests::{self, InvokeTests};
use crate::ta::sdp_basic::{self, SdpBasic};
use crate::ta::trusted_ui::{self, TrustedUi};
use crate::ta::{ClientIdentity, TaEnv, TaFactory, TaParam, TaRegistry, TaSessions, TrustedApp};
use crate::threads::Threads;

/// At most this many parameters reach a TA (GlobalPlatform's four).
pub const MAX_TA_PARAMS: usize = 4;

/// Errors of building a secure world from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecureWorldError {
    /// A use case is configured static but the platform has no carveout.
    #[error("use case {0} is configured static but the platform has no carveout for it")]
    NoCarveout(UseCase),
    /// Dynamic settings are unusable.
    #[error("use case {0}: alignment must be a power of two of at least a page, dividing the chunk size")]
    BadDynamic(UseCase),
    /// The PIN is not 4 to 12 ASCII digits.
    #[error("the trusted-UI PIN must be 4 to 12 ASCII digits")]
    BadPin,
    /// The number of secure threads is 0 or above [`crate::config::MAX_THREADS`].
    #[error("the secure world needs 1 to {} threads", crate::config::MAX_THREADS)]
    BadThreads,
}

/// The emulated secure world. See the module docs.
pub struct SecureWorld {
    platform: Arc<Platform>,
    protmem: Protmem,
    sessions: Sessions,
    registry: RwLock<TaRegistry>,
    input: SecureInput,
    encoder_key: Mutex<Key128>,
    caps: Capabilities,
    pa_width: u32,
    ta_dirs: Vec<std::path::PathBuf>,
    host_tas: HostTaConfig,
    /// The running instances of host-built TAs.
    host: HostInstances,
    /// `[tee] max_ta_size`: the largest image fetched through the supplicant.
    max_ta_size: u64,
    threads: Threads,
    /// Set once by [`SecureWorld::panic`]; never cleared.
    dead: AtomicBool,
    /// The normal world's supplicant RPC path, once a driver attached one.
    rpc: RwLock<Option<Arc<dyn SupplicantRpc>>>,
}

impl TaSessions for SecureWorld {
    fn open_for_ta(&self, uuid: Uuid, client: ClientIdentity, params: &mut [TaParam]) -> (TeeResult, u32, u32) {
        SecureWorld::open_for_ta(self, uuid, client, params)
    }

    fn invoke_for_ta(&self, id: u32, func: u32, params: &mut [TaParam]) -> (TeeResult, u32) {
        SecureWorld::invoke_for_ta(self, id, func, params)
    }

    fn close_session(&self, id: u32) -> TeeResult {
        SecureWorld::close_session(self, id)
    }
}

impl fmt::Debug for SecureWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureWorld")
            .field("caps", &self.caps)
            .field("protmem", &self.protmem)
            .field("sessions", &self.sessions.count())
            .finish_non_exhaustive()
    }
}

/// `(result, origin)` of a std call.
type Outcome = (TeeResult, u32);

fn tee(r: TeeResult) -> Outcome {
    (r, TEEC_ORIGIN_TEE)
}

fn resolve_kinds(
    platform: &Platform,
    config: &SecureConfig,
) -> Result<BTreeMap<UseCase, ProtmemKind>, SecureWorldError> {
    let mut kinds = BTreeMap::new();
    for uc in UseCase::ALL {
        let carveout = platform.carveout(uc).map(|c| c.range);
        let kind = match config.mode(uc) {
            ProtmemMode::Auto => carveout.map_or(ProtmemKind::Dynamic(DynamicProtmem::default()), ProtmemKind::Static),
            ProtmemMode::Static => ProtmemKind::Static(carveout.ok_or(SecureWorldError::NoCarveout(uc))?),
            ProtmemMode::Dynamic(d) => {
                let ok =
                    d.alignment.is_power_of_two() && d.alignment >= PAGE_SIZE && d.min_size.bytes() % d.alignment == 0;
                if !ok {
                    return Err(SecureWorldError::BadDynamic(uc));
                }
                ProtmemKind::Dynamic(d)
            }
            ProtmemMode::Disabled => ProtmemKind::Disabled,
        };
        kinds.insert(uc, kind);
    }
    Ok(kinds)
}

impl SecureWorld {
    /// Boots the secure world the platform description asks for
    /// ([`SecureConfig::for_platform`]): the one way `teeheap` boots it.
    ///
    /// # Errors
    /// [`SecureWorldError`] if the description's `[tee]` settings do not
    /// fit (e.g. a bad PIN).
    pub fn boot(platform: &Arc<Platform>) -> Result<Arc<SecureWorld>, SecureWorldError> {
        SecureWorld::new(Arc::clone(platform), SecureConfig::for_platform(platform)).map(Arc::new)
    }

    /// Boots the secure world on `platform` with `config`, with the
    /// built-in TAs registered.
    ///
    /// # Errors
    /// [`SecureWorldError`] if the configuration does not fit the platform.
    pub fn new(platform: Arc<Platform>, config: SecureConfig) -> Result<SecureWorld, SecureWorldError> {
        let pin = &config.trusted_ui_pin;
        if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SecureWorldError::BadPin);
        }
        if !(1..=crate::config::MAX_THREADS).contains(&config.threads) {
            return Err(SecureWorldError::BadThreads);
        }
        let kinds = resolve_kinds(&platform, &config)?;
        let mut caps = Capabilities::DYNAMIC_SHM;
        for k in kinds.values() {
            match k {
                ProtmemKind::Static(_) => caps = caps.union(Capabilities::PROTMEM),
                ProtmemKind::Dynamic(_) => caps = caps.union(Capabilities::DYNAMIC_PROTMEM),
                ProtmemKind::Disabled => {}
            }
        }
        let last = platform.dram().end().raw() - 1;
        let pa_width = (u64::BITS - last.leading_zeros()).max(32);

        let mut registry = TaRegistry::default();
        registry.register(sdp_basic::UUID, "sdp_basic", Arc::new(|| Box::<SdpBasic>::default()));
        let keys = config.content_keys.clone();
        registry.register(
            content_decrypt::UUID,
            "content_decrypt",
            Arc::new(move || Box::new(ContentDecrypt::new(keys.clone()))),
        );
        let pin = config.trusted_ui_pin.clone();
        registry.register(trusted_ui::UUID, "trusted_ui", Arc::new(move || Box::new(TrustedUi::new(&pin))));
        registry.register(invoke_tests::UUID, "invoke_tests", Arc::new(|| Box::new(InvokeTests)));
        let runner = config.ta_runner.clone().or_else(|| std::env::current_exe().ok()).unwrap_or_default();
        let host_tas = HostTaConfig { runner, call_timeout: config.ta_call_timeout };

        tracing::info!(caps = format_args!("{:#x}", caps.bits()), ?kinds, "secure world booted");
        Ok(SecureWorld {
            protmem: Protmem::new(Arc::clone(&platform), kinds),
            platform,
            sessions: Sessions::default(),
            registry: RwLock::new(registry),
            input: SecureInput::default(),
            encoder_key: Mutex::new(config.encoder_key),
            caps,
            pa_width,
            ta_dirs: config.ta_dirs.clone(),
            host_tas,
            host: HostInstances::default(),
            max_ta_size: config.max_ta_size,
            threads: Threads::new(config.threads),
            dead: AtomicBool::new(false),
            rpc: RwLock::new(None),
        })
    }

    /// The single entry point from the normal world: a fast call, or a std
    /// call whose message is updated in place (`ret`, `ret_origin`, output
    /// params, the session id of an open). A std call runs on a secure
    /// thread; with every thread busy it does not start
    /// ([`SmcResult::ThreadLimit`]).
    pub fn smc(&self, call: Smc<'_>) -> SmcResult {
        match call {
            Smc::Fast(f) => self.fast_call(f),
            Smc::Std(msg) => {
                let Some(_thread) = self.threads.take() else {
                    return SmcResult::ThreadLimit;
                };
                let (r, origin) = self.std_call(msg);
                msg.ret = r.err().map_or(0, TeeError::code);
                msg.ret_origin = origin;
                SmcResult::Done
            }
        }
    }

    fn fast_call(&self, call: FastCall) -> SmcResult {
        if self.is_dead() {
            return SmcResult::NotAvailable;
        }
        match call {
            FastCall::GetAbiVersion => SmcResult::AbiVersion(ABI_VERSION),
            FastCall::ExchangeCapabilities { .. } => SmcResult::Capabilities(self.caps),
            FastCall::GetProtmemConfig { use_case } => match self.protmem.kind(use_case) {
                ProtmemKind::Static(range) => SmcResult::StaticProtmem { range, pa_width: self.pa_width },
                _ => SmcResult::NotAvailable,
            },
        }
    }

    fn std_call(&self, msg: &mut Msg) -> Outcome {
        if self.is_dead() && matches!(msg.cmd, Command::OpenSession | Command::InvokeCommand) {
            return tee(Err(TeeError::TARGET_DEAD));
        }
        match msg.cmd {
            Command::OpenSession => self.open_session(msg),
            Command::InvokeCommand => self.invoke(msg),
            Command::CloseSession => tee(self.close_session(msg.session)),
            Command::Cancel => {
                let n = self.sessions.cancel(msg.session, msg.cancel_id);
                tracing::debug!(session = msg.session, cancel_id = msg.cancel_id, calls = n, "secure world: cancel");
                tee(Ok(()))
            }
            Command::RegisterShm => tee(self.register_shm(msg)),
            Command::UnregisterShm => tee(value(msg, 0).and_then(|(cookie, _, _)| self.protmem.unregister_shm(cookie))),
            Command::LendProtmem => tee(self.lend(msg)),
            Command::ReclaimProtmem => tee(value(msg, 0).and_then(|(cookie, _, _)| self.protmem.reclaim(cookie))),
            Command::GetProtmemConfig => tee(self.get_protmem_config(msg)),
        }
    }

    fn env<'a>(&'a self, session: u32, client: ClientIdentity, cancel: &'a std::sync::atomic::AtomicBool) -> TaEnv<'a> {
        TaEnv { client, memory: TaMemory::new(&self.platform), input: &self.input, session, cancel, world: self }
    }

    fn resolve(&self, msg: &Msg) -> TeeResult<Vec<TaParam>> {
        if msg.params.len() > MAX_TA_PARAMS {
            return Err(TeeError::BAD_PARAMETERS);
        }
        params::resolve(&self.platform, &self.protmem, &msg.params)
    }

    /// The TA `uuid` for a new session: a new built-in instance, else a
    /// session on an instance of `<uuid>.ta` in a TA directory (in its own
    /// process, shared by sessions as its flags say); `None` if there is
    /// no such TA.
    ///
    /// # Errors
    /// BUSY, or the error of loading the TA (reported by the TEE).
    fn instantiate(&self, uuid: &Uuid) -> Option<TeeResult<Box<dyn TrustedApp>>> {
        if let Some(ta) = self.registry.read().recover().instantiate(uuid) {
            return Some(Ok(ta));
        }
        let path = host::find(&self.ta_dirs, uuid)?;
        Some(
            self.host
                .session(*uuid, host::TaFile::Path(path), &self.host_tas)
                .map(|t| Box::new(t) as Box<dyn TrustedApp>),
        )
    }

    /// Opens a session on the new instance `ta`; returns the session id
    /// (0 on failure).
    fn open_instance(
        &self,
        mut ta: Box<dyn TrustedApp>,
        uuid: Uuid,
        client: ClientIdentity,
        ta_params: &mut [TaParam],
        cancel_id: u32,
    ) -> (TeeResult, u32, u32) {
        let call = self.sessions.begin_call(0, cancel_id);
        let r = ta.open_session(&self.env(0, client, call.flag()), ta_params);
        drop(call);
        let origin = ta.origin(&r);
        let mut session = 0;
        if r.is_ok() {
            session = self.sessions.insert(Session { uuid, client, ta, panicked: false });
            tracing::debug!(%uuid, session, "secure world: session opened");
        }
        (r, origin, session)
    }

    fn open_session(&self, msg: &mut Msg) -> Outcome {
        let ta = match self.instantiate(&msg.uuid) {
            None => match self.load_through_supplicant(&msg.uuid) {
                Ok(ta) => ta,
                Err(e) => return tee(Err(e)),
            },
            Some(Err(e)) => return tee(Err(e)),
            Some(Ok(ta)) => ta,
        };
        let mut ta_params = match self.resolve(msg) {
            Ok(p) => p,
            Err(e) => return tee(Err(e)),
        };
        match self.platform.faults().at(&Point::TaOpen { uuid: msg.uuid.as_bytes() }) {
            Some(Fault::Busy) => return tee(Err(TeeError::BUSY)),
            Some(Fault::Panic) => return tee(Err(TeeError::TARGET_DEAD)),
            Some(Fault::Delay(d)) => std::thread::sleep(d),
            Some(Fault::Fail) | None => {}
        }
        let client = ClientIdentity { login: msg.login, uuid: msg.client_uuid };
        let (r, origin, session) = self.open_instance(ta, msg.uuid, client, &mut ta_params, msg.cancel_id);
        params::write_back(&ta_params, &mut msg.params);
        msg.session = session;
        (r, origin)
    }

    /// Fetches TA `uuid` through tee-supplicant (`OPTEE_RPC_CMD_LOAD_TA`
    /// in two rounds, the bytes through supplicant shared memory:
    /// [`crate::ta_load`]), as OP-TEE's REE FS TA store does for a TA it
    /// does not have, and opens an instance of it (a TA process loading
    /// the sealed image; a running single instance is joined instead). The
    /// error is the one the open session fails with: ITEM_NOT_FOUND with no
    /// supplicant serving or none that has the TA, else what
    /// [`crate::ta_load::fetch`] or the loading says.
    fn load_through_supplicant(&self, uuid: &Uuid) -> TeeResult<Box<dyn TrustedApp>> {
        let rpc = self.rpc.read().recover().clone();
        let Some(rpc) = rpc else {
            tracing::info!(%uuid, "secure world: no such TA");
            return Err(TeeError::ITEM_NOT_FOUND);
        };
        match crate::ta_load::fetch(rpc.as_ref(), &self.platform, uuid, self.max_ta_size) {
            Ok(image) => {
                tracing::info!(%uuid, "secure world: TA fetched through the supplicant");
                let file = host::TaFile::Image(image.into_fd());
                Ok(Box::new(self.host.session(*uuid, file, &self.host_tas)?))
            }
            Err(e) => {
                tracing::info!(%uuid, error = %e, "secure world: LOAD_TA through the supplicant failed");
                Err(e)
            }
        }
    }

    /// Attaches (or with `None` detaches) the normal world's supplicant
    /// RPC path (a driver does at probe).
    pub fn set_supplicant_rpc(&self, rpc: Option<Arc<dyn SupplicantRpc>>) {
        *self.rpc.write().recover() = rpc;
    }

    /// `TEE_OpenTASession` of a TA (`client` names it): the session id on
    /// success.
    pub(crate) fn open_for_ta(
        &self,
        uuid: Uuid,
        client: ClientIdentity,
        params: &mut [TaParam],
    ) -> (TeeResult, u32, u32) {
        match self.instantiate(&uuid) {
            None => (Err(TeeError::ITEM_NOT_FOUND), TEEC_ORIGIN_TEE, 0),
            Some(Err(e)) => (Err(e), TEEC_ORIGIN_TEE, 0),
            Some(Ok(ta)) => self.open_instance(ta, uuid, client, params, 0),
        }
    }

    /// `TEE_InvokeTACommand` of a TA on a session it opened.
    pub(crate) fn invoke_for_ta(&self, id: u32, func: u32, params: &mut [TaParam]) -> (TeeResult, u32) {
        let Some(session) = self.sessions.get(id) else {
            return (Err(TeeError::BAD_PARAMETERS), TEEC_ORIGIN_TEE);
        };
        let call = self.sessions.begin_call(id, 0);
        let mut s = session.lock().recover();
        let client = s.client;
        let r = s.ta.invoke(&self.env(id, client, call.flag()), func, params);
        let origin = s.ta.origin(&r);
        (r, origin)
    }

    fn invoke(&self, msg: &mut Msg) -> Outcome {
        let Some(session) = self.sessions.get(msg.session) else {
            return tee(Err(TeeError::BAD_PARAMETERS));
        };
        let mut ta_params = match self.resolve(msg) {
            Ok(p) => p,
            Err(e) => return tee(Err(e)),
        };
        let call = self.sessions.begin_call(msg.session, msg.cancel_id);
        let mut s = session.lock().recover();
        if s.panicked {
            return tee(Err(TeeError::TARGET_DEAD));
        }
        match self.platform.faults().at(&Point::TaInvoke { uuid: s.uuid.as_bytes(), cmd: msg.func }) {
            Some(Fault::Panic) => {
                tracing::info!(uuid = %s.uuid, session = msg.session, func = msg.func, "secure world: TA panicked");
                s.panicked = true;
                return tee(Err(TeeError::TARGET_DEAD));
            }
            Some(Fault::Busy) => return tee(Err(TeeError::BUSY)),
            Some(Fault::Delay(d)) => std::thread::sleep(d),
            Some(Fault::Fail) | None => {}
        }
        let client = s.client;
        let r = s.ta.invoke(&self.env(msg.session, client, call.flag()), msg.func, &mut ta_params);
        tracing::debug!(uuid = %s.uuid, session = msg.session, func = msg.func, result = ?r.err(), "secure world: invoke");
        let origin = s.ta.origin(&r);
        drop(s);
        params::write_back(&ta_params, &mut msg.params);
        (r, origin)
    }

    pub(crate) fn close_session(&self, id: u32) -> TeeResult {
        let session = self.sessions.remove(id).ok_or(TeeError::BAD_PARAMETERS)?;
        let call = self.sessions.begin_call(id, 0);
        let mut s = session.lock().recover();
        let client = s.client;
        s.ta.close_session(&self.env(id, client, call.flag()));
        tracing::debug!(uuid = %s.uuid, session = id, "secure world: session closed");
        Ok(())
    }

    fn register_shm(&self, msg: &Msg) -> TeeResult {
        let (cookie, _, _) = value(msg, 0)?;
        self.protmem.register_shm(cookie, tmem_range(msg, 1)?)
    }

    fn lend(&self, msg: &Msg) -> TeeResult {
        let (uc, cookie, _) = value(msg, 0)?;
        let uc = u32::try_from(uc).ok().and_then(UseCase::from_id).ok_or(TeeError::BAD_PARAMETERS)?;
        self.protmem.lend(uc, tmem_range(msg, 1)?, cookie)
    }

    fn get_protmem_config(&self, msg: &mut Msg) -> TeeResult {
        let (uc, _, _) = value(msg, 0)?;
        let uc = u32::try_from(uc).ok().and_then(UseCase::from_id).ok_or(TeeError::BAD_PARAMETERS)?;
        let Some(MsgParam::Tmem { dir, phys, size }) = msg.params.get(1).copied() else {
            return Err(TeeError::BAD_PARAMETERS);
        };
        if !dir.is_output() {
            return Err(TeeError::BAD_PARAMETERS);
        }
        let (min, align, attrs) = self.protmem.config(uc)?;
        msg.params[0] = MsgParam::Value { dir: ParamDir::InOut, a: min, b: align, c: u64::from(self.pa_width) };
        let bytes: Vec<u8> = attrs.iter().flat_map(|a| a.encode().to_le_bytes()).collect();
        let needed = (attrs.len() * ProtmemAttr::SIZE) as u64;
        msg.params[1] = MsgParam::Tmem { dir, phys, size: needed };
        if size < needed {
            return Err(TeeError::SHORT_BUFFER);
        }
        let out = params::resolve_one(&self.platform, &self.protmem, &MsgParam::Tmem { dir, phys, size })?;
        match out.memref() {
            Some(m) if m.kind() == MemKind::Normal => TaMemory::new(&self.platform).write(m, 0, &bytes),
            _ => Err(TeeError::BAD_PARAMETERS),
        }
    }

    /// The secure world panics: sessions cannot be opened or invoked any
    /// more (TARGET_DEAD), fast calls go unanswered (a backend probe fails
    /// with `ENODEV`). Closing sessions, unregistering shared memory and
    /// reclaiming lent memory still work, so that what the normal world
    /// held drains and is scrubbed; a board would need a reboot.
    pub fn panic(&self) {
        self.dead.store(true, Ordering::SeqCst);
        tracing::warn!(sessions = self.sessions.count(), "secure world panicked");
    }

    /// Whether [`Self::panic`] happened.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// The platform this secure world runs on.
    pub fn platform(&self) -> &Arc<Platform> {
        &self.platform
    }

    /// Where `use_case`'s protected memory comes from (for reports; the
    /// normal world learns it through the ABI).
    pub fn protmem_kind(&self, use_case: UseCase) -> ProtmemKind {
        self.protmem.kind(use_case)
    }

    /// Counters of lending, reclaiming and scrubbing since boot.
    pub fn stats(&self) -> ProtmemStats {
        self.protmem.stats()
    }

    /// The objects lent right now.
    pub fn lent_objects(&self) -> Vec<LentInfo> {
        self.protmem.lent_objects()
    }

    /// Installs (or with `None` removes) a hook called after each reclaimed
    /// object was scrubbed and before its firewall region is removed.
    pub fn set_scrub_observer(&self, observer: Option<ScrubObserver>) {
        self.protmem.set_observer(observer);
    }

    /// The secure input device (for whoever plays the user).
    pub fn secure_input(&self) -> &SecureInput {
        &self.input
    }

    /// Installs TA `uuid` (secure-side provisioning; replaces one with the
    /// same UUID for sessions opened from now on).
    pub fn register_ta(&self, uuid: Uuid, name: &'static str, factory: TaFactory) {
        self.registry.write().recover().register(uuid, name, factory);
    }

    /// `(uuid, name)` of every installed TA.
    pub fn tas(&self) -> Vec<(Uuid, &'static str)> {
        self.registry.read().recover().list()
    }

    /// `(busy, total)` secure threads.
    pub fn thread_usage(&self) -> (u32, u32) {
        self.threads.usage()
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.count()
    }

    /// Programs the record key into `slot` (the video encoder's key
    /// register). The key never leaves the secure world otherwise.
    ///
    /// # Errors
    /// ACCESS_DENIED if the slot belongs to any master other than
    /// [`teeheap_platform::Master::VideoEncoder`].
    pub fn program_encoder_key(&self, slot: &dyn KeySlot) -> TeeResult {
        let key = self.encoder_key.lock().recover();
        encoder_key::program(slot, &key.0)
    }
}

fn value(msg: &Msg, i: usize) -> TeeResult<(u64, u64, u64)> {
    msg.params.get(i).and_then(MsgParam::values).ok_or(TeeError::BAD_PARAMETERS)
}

fn tmem_range(msg: &Msg, i: usize) -> TeeResult<PhysRange> {
    match msg.params.get(i) {
        Some(MsgParam::Tmem { phys, size, .. }) => PhysRange::new(*phys, *size).ok_or(TeeError::BAD_PARAMETERS),
        _ => Err(TeeError::BAD_PARAMETERS),
    }
}

impl SecureMonitor for SecureWorld {
    fn smc(&self, call: Smc<'_>) -> SmcResult {
        SecureWorld::smc(self, call)
    }

    fn set_supplicant_rpc(&self, rpc: Option<Arc<dyn SupplicantRpc>>) {
        SecureWorld::set_supplicant_rpc(self, rpc);
    }
}
