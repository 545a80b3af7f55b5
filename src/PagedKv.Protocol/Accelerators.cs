using System;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace PagedKv.Protocol;

/// <summary>ILGPU accelerators, created once per process (creating a context is the expensive part).</summary>
public static class Accelerators
{
    private static readonly Lazy<Context> Context = new(() => ILGPU.Context.Create(b => b.DefaultCPU().Cuda()));
    private static readonly Lazy<Accelerator> CpuAccelerator = new(() => Context.Value.CreateCPUAccelerator(0));
    private static readonly Lazy<Accelerator?> CudaAccelerator = new(() =>
        Context.Value.GetCudaDevices().Count > 0 ? Context.Value.CreateCudaAccelerator(0) : null);

    /// <summary>ILGPU's CPU accelerator (an emulator: always present).</summary>
    public static Accelerator Cpu => CpuAccelerator.Value;

    /// <summary>The first CUDA device, or null when there is none.</summary>
    public static Accelerator? Cuda => CudaAccelerator.Value;

    /// <summary>"cpu" or "cuda" (null when no CUDA device exists).</summary>
    public static Accelerator? ByName(string name) => name switch
    {
        "cpu" => Cpu,
        "cuda" => Cuda,
        _ => throw new ArgumentException($"unknown accelerator '{name}' (cpu or cuda)", nameof(name)),
    };
}
