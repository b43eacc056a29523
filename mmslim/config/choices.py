"""Every set of allowed values, defined once: the configs validate against these and the CLI
offers them as choices."""

from __future__ import annotations

PRESETS = ("paper", "cpu-small", "tiny")  # GPU recipe, 2-core recipe, seconds (tests, smoke)
STAGES = ("amplitude", "phase")  # training stages, which are also the map kinds
KINDS = STAGES  # map kinds in files and data (a stage trains one kind)
BRANCHES = ("hi", "lo")  # the fine (high-rate) and coarse (low-rate) VQ-VAE
QUANTIZER_BRANCHES = ("both", *BRANCHES)  # where ModelConfig's quantizer options apply
CODING_MODES = ("fixed", "huffman", "ans")  # entropy coding; the order is each mode's file code
BACKENDS = ("torch", "onnx")  # what runs the sender and receiver graphs: PyTorch, ONNX Runtime
# mmSlim's learned mask, the same thresholded at 0.5 ("hard": each cell goes to one branch only),
# then the ablations: M = 0.5, one VQ-VAE
MASK_MODES = ("learned", "hard", "fixed", "none")
QUANTIZER_FAMILIES = ("vq", "fsq", "gumbel", "soft", "vqp")  # mmslim.nn.quantizers.zoo
CODEBOOK_INITS = ("uniform", "kmeans", "rd_gaussian")  # uniform +-1/K is the reference's
VQ_GRADIENTS = ("ste", "rotation")  # straight-through, or the rotation trick
MASK_HEADS = ("sigmoid", "reference")  # MaskNet's head; "reference" keeps the paper's defect
OBJECTIVES = ("ssim", "radar")  # the paper's 1 - SSIM, or the radar-aware objective
SSIM_WINDOWS = ("box", "gaussian")  # 11x11 uniform (reference) or Gaussian sigma 1.5
SCENARIO_NAMES = ("default", "lab77")  # simulator set-ups (mmslim.data.simulator.SCENARIOS)
FLOOR_MODES = ("none", "smooth", "noise")  # what the receiver draws for the floor (codec.floor)
# training recipes of ``mmslim bench quantizers`` (mmslim.bench.quantizers.RECIPES)
QUANTIZER_BENCH_RECIPES = ("cpu-small", "ssim-v1")
MAX_CODES = 2**15  # largest codebook the file header and the prefix coders accept

# quantizer families (mmslim.config.quantizers)
AFFINE_MODES = ("none", "learned", "statistics")  # codebook affine map (Huh et al. 2023)
INPLACE_OPTIMIZERS = ("none", "sgd")  # alternated codebook optimisation (Huh et al. 2023)
STD_PENALTIES = ("none", "unit", "spread")  # soft family: penalty on the learned std (semivq)
GAMMA_POLICIES = ("shared", "personalize")  # soft family: the learned offset's form (semivq)
LIBRARY_INITS = ("uniform", "kmeans")  # what vector-quantize-pytorch offers
