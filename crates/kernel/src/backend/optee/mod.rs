//! An OP-TEE-style backend driver: probes a secure world through its SMC
//! entry (any [`SecureMonitor`]; the driver knows the message ABI of
//! `teeheap-optee-abi`, not the secure world's implementation), registers `tee0`/`teepriv0`, and binds every protected
//! heap the secure world supports to a pool — the static carveout it
//! reports, or a dynamic pool that lends normal memory on demand.
//!
//! The backend owns its registrations: dropping it (driver remove) unbinds
//! its heaps and unregisters its devices; live buffers drain.

pub mod call_queue;
pub mod driver;
pub mod lender;

use std::sync::Arc;

use teeheap_optee_abi::{ABI_VERSION, Capabilities, FastCall, Msg, ProtmemAttr, SecureMonitor, Smc, SmcResult};
use teeheap_platform::Platform;
use teeheap_platform::{Len, Master, PAGE_SIZE, UseCase};
use teeheap_uapi::tee::{
    TEE_GEN_CAP_GP, TEE_GEN_CAP_MEMREF_NULL, TEE_GEN_CAP_PRIVILEGED, TEE_GEN_CAP_REG_MEM, TEE_IMPL_ID_OPTEE,
    TEE_OPTEE_CAP_TZ, gp,
};

use crate::Kernel;
use crate::backend::optee::call_queue::SmcPort;
use crate::backend::optee::driver::OpteeDriver;
use crate::backend::optee::lender::OpteeLender;
use crate::error::{Errno, Error, Result};
use crate::pool::ProtMemPool;
use crate::pool::carveout::CarveoutPool;
use crate::pool::dynamic::{DynamicConfig, DynamicPool};
use crate::tee::{TeeDesc, TeeDevice};

/// Backend settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpteeConfig {
    /// Cap on the memory a dynamic pool may lend, per use case, in bytes.
    pub dynamic_max: u64,
}

impl Default for OpteeConfig {
    fn default() -> Self {
        OpteeConfig { dynamic_max: 256 << 20 }
    }
}

impl OpteeConfig {
    /// The settings the platform description asks for (`[tee] dynamic_max`).
    pub fn for_platform(platform: &Platform) -> OpteeConfig {
        OpteeConfig { dynamic_max: platform.config().tee.dynamic_max.0 }
    }
}

/// A master the secure world grants access to a use case's memory, and
/// how (a decoded GET_PROTMEM_CONFIG attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The device (or CPU) granted access.
    pub master: Master,
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
}

impl From<ProtmemAttr> for Grant {
    fn from(a: ProtmemAttr) -> Grant {
        Grant { master: a.master, read: a.read, write: a.write }
    }
}

/// What GET_PROTMEM_CONFIG answered for a use case.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProtmemConfig {
    min_size: u64,
    align: u64,
    masters: Vec<Grant>,
}

/// How one use case was bound at probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A static carveout.
    Static(teeheap_platform::PhysRange),
    /// A dynamic pool lending chunks of `chunk` bytes, up to `max`.
    Dynamic {
        /// Granularity reported by GET_PROTMEM_CONFIG.
        chunk: u64,
        /// The cap.
        max: u64,
        /// Masters the secure world grants access (from the attributes).
        masters: Vec<Grant>,
    },
}

/// The OP-TEE-style backend over the secure world `W`. See the module
/// documentation.
#[derive(Debug)]
pub struct OpteeBackend<W: SecureMonitor + 'static> {
    kernel: Arc<Kernel>,
    world: Arc<W>,
    port: Arc<SmcPort>,
    devices: Vec<Arc<TeeDevice>>,
    bound: Vec<(UseCase, Bound)>,
}

impl<W: SecureMonitor + 'static> OpteeBackend<W> {
    /// Probes `world` and registers devices and heaps: the one way a
    /// backend is bound (`teeheap` boots its secure world with
    /// `SecureWorld::boot` and probes it with
    /// [`OpteeConfig::for_platform`]).
    ///
    /// # Errors
    /// `ENODEV` if the secure world speaks an incompatible ABI; `EEXIST` if
    /// TEE devices are registered already; `EBUSY` if a use case is still
    /// held by an earlier registration. What was registered is undone then.
    pub fn probe(kernel: &Arc<Kernel>, world: Arc<W>, config: OpteeConfig) -> Result<OpteeBackend<W>> {
        match world.smc(Smc::Fast(FastCall::GetAbiVersion)) {
            SmcResult::AbiVersion(v) if v.is_compatible_with(ABI_VERSION) => {}
            other => {
                tracing::error!(?other, "secure world ABI not supported");
                return Err(Error::new(Errno::ENODEV, "incompatible secure world ABI"));
            }
        }
        let caps = match world.smc(Smc::Fast(FastCall::ExchangeCapabilities { normal_world: Capabilities(0) })) {
            SmcResult::Capabilities(c) => c,
            _ => return Err(Error::new(Errno::ENODEV, "secure world did not report capabilities")),
        };
        let monitor: Arc<dyn SecureMonitor> = Arc::clone(&world) as Arc<dyn SecureMonitor>;
        let port = Arc::new(SmcPort::new(monitor));
        let supp = Arc::new(crate::tee::supp::Supp::default());
        let driver = Arc::new(OpteeDriver::new(Arc::clone(&port), Arc::clone(&supp)));
        // As optee_get_version (SMC ABI): both nodes report the same
        // version; the core adds PRIVILEGED on the supplicant's node.
        let gen_caps = TEE_GEN_CAP_GP | TEE_GEN_CAP_REG_MEM | TEE_GEN_CAP_MEMREF_NULL;
        let desc = |gen_caps| TeeDesc { impl_id: TEE_IMPL_ID_OPTEE, impl_caps: TEE_OPTEE_CAP_TZ, gen_caps };
        let mut backend = OpteeBackend {
            kernel: Arc::clone(kernel),
            world: Arc::clone(&world),
            port,
            devices: Vec::new(),
            bound: Vec::new(),
        };
        let privileged = TeeDevice::with_driver("teepriv0", desc(gen_caps | TEE_GEN_CAP_PRIVILEGED), driver.clone());
        // The supplicant's shared memory is found by id on its node.
        world.set_supplicant_rpc(Some(Arc::new(driver::SuppRpc::new(supp, Arc::clone(privileged.shm_ids())))));
        for dev in [TeeDevice::with_driver("tee0", desc(gen_caps), driver), privileged] {
            kernel.tee().register(&dev)?;
            backend.devices.push(dev);
        }
        for use_case in UseCase::ALL {
            let Some((pool, bound)) = backend.pool_for(use_case, caps, config)? else { continue };
            kernel.tee_register_dma_heap(&backend.devices[0], use_case, pool)?;
            tracing::info!(%use_case, ?bound, "OP-TEE backend bound a protected heap");
            backend.bound.push((use_case, bound));
        }
        Ok(backend)
    }

    fn pool_for(
        &self,
        use_case: UseCase,
        caps: Capabilities,
        config: OpteeConfig,
    ) -> Result<Option<(Box<dyn ProtMemPool>, Bound)>> {
        if caps.contains(Capabilities::PROTMEM)
            && let SmcResult::StaticProtmem { range, .. } =
                self.world.smc(Smc::Fast(FastCall::GetProtmemConfig { use_case }))
        {
            let pool = CarveoutPool::over(self.kernel.carveout_space(&format!("{use_case}"), range)?);
            return Ok(Some((Box::new(pool), Bound::Static(range))));
        }
        if !caps.contains(Capabilities::DYNAMIC_PROTMEM) {
            return Ok(None);
        }
        let Some(ProtmemConfig { min_size, align, masters }) = self.protmem_config(use_case)? else { return Ok(None) };
        let chunk = Len::page_align(min_size).ok_or(Error::new(Errno::EINVAL, "bad protmem granularity"))?;
        let align = Len::page_align(align.max(PAGE_SIZE))
            .filter(|a| a.bytes().is_power_of_two())
            .ok_or(Error::new(Errno::EINVAL, "bad protmem alignment"))?;
        let lender = Arc::new(OpteeLender::new(Arc::clone(&self.port)));
        let pool = DynamicPool::new(
            use_case,
            DynamicConfig { chunk, align, max: config.dynamic_max },
            lender,
            Arc::clone(self.kernel.normal_memory()),
        );
        Ok(Some((Box::new(pool), Bound::Dynamic { chunk: chunk.bytes(), max: config.dynamic_max, masters })))
    }

    /// GET_PROTMEM_CONFIG: asks for the attribute array size first, then
    /// the configuration (minimum size, alignment, masters). `None` if the
    /// secure world does not serve the use case.
    fn protmem_config(&self, use_case: UseCase) -> Result<Option<ProtmemConfig>> {
        let platform = self.kernel.platform();
        let heap = self.kernel.normal_memory();
        let mut msg = Msg::get_protmem_config(use_case, teeheap_platform::PhysAddr(0), 0);
        self.std(&mut msg)?;
        let needed = match msg.ret {
            gp::TEEC_ERROR_SHORT_BUFFER => msg.params.get(1).and_then(|p| p.memref_size()).unwrap_or(0),
            gp::TEEC_SUCCESS => 0,
            _ => return Ok(None),
        };
        let buf = match Len::page_align(needed) {
            Some(len) => {
                Some(heap.alloc_pages(len).ok_or(Error::new(Errno::ENOMEM, "no memory for protmem attributes"))?)
            }
            None => None,
        };
        let result = (|| {
            let mut msg =
                Msg::get_protmem_config(use_case, buf.map_or(teeheap_platform::PhysAddr(0), |b| b.start()), needed);
            self.std(&mut msg)?;
            if msg.ret != gp::TEEC_SUCCESS {
                return Ok(None);
            }
            let (min_size, align, _pa_width) = msg.params.first().and_then(|p| p.values()).unwrap_or_default();
            let mut attrs = vec![0u8; needed as usize];
            if let Some(b) = buf {
                platform
                    .read(Master::NsCpu, b.start(), &mut attrs)
                    .map_err(|_| Error::new(Errno::EIO, "cannot read attributes"))?;
            }
            let masters = ProtmemAttr::decode_all(&attrs).into_iter().map(Grant::from).collect();
            Ok(Some(ProtmemConfig { min_size, align, masters }))
        })();
        if let Some(b) = buf {
            heap.free_pages(b);
        }
        result
    }

    fn std(&self, msg: &mut Msg) -> Result<()> {
        self.port.std(msg)
    }

    /// The client device (`tee0`).
    pub fn device(&self) -> &Arc<TeeDevice> {
        &self.devices[0]
    }

    /// The secure world.
    pub fn world(&self) -> &Arc<W> {
        &self.world
    }

    /// The SMC entry with its call queue.
    pub fn port(&self) -> &Arc<SmcPort> {
        &self.port
    }

    /// How each use case was bound.
    pub fn bound(&self) -> &[(UseCase, Bound)] {
        &self.bound
    }

    /// Removes the backend (same as dropping it).
    pub fn remove(self) {}
}

impl<W: SecureMonitor + 'static> Drop for OpteeBackend<W> {
    fn drop(&mut self) {
        self.world.set_supplicant_rpc(None);
        for dev in &self.devices {
            self.kernel.tee_unregister_dma_heaps(dev);
            self.kernel.tee().unregister(dev);
            dev.revoke_driver();
        }
    }
}
